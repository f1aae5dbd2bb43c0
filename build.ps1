# Windows equivalent of build.sh: builds XNNPACK ae108ef from source (CMake FetchContent, MSVC),
# the native shim, the .NET solution and the CLI; `./build.ps1 test` also runs the tests.
# Needs: Visual Studio 2022 C++ tools (run from a Developer PowerShell), CMake >= 3.20, git,
# network access for FetchContent, and the .NET 10 SDK. Not run by this project's CI (Linux only).
param([ValidateSet('build', 'test', 'bindings')] [string] $Command = 'build')
$ErrorActionPreference = 'Stop'
Set-Location $PSScriptRoot

$Configuration = 'Release'
$Rid = 'win-x64'
$BuildDir = "build/native-$Rid"
$StageDir = "artifacts/native/$Rid"

function Invoke-Checked([string] $Exe, [string[]] $Arguments) {
    & $Exe @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$Exe $($Arguments -join ' ') failed with exit code $LASTEXITCODE" }
}

function Build-Native {
    Invoke-Checked cmake @('-S', 'native', '-B', $BuildDir, '-DOSN_XNNPACK_FROM_SOURCE=ON')
    Invoke-Checked cmake @('--build', $BuildDir, '--config', $Configuration, '--parallel')
    if (Test-Path $StageDir) { Remove-Item -Recurse -Force $StageDir }
    Invoke-Checked cmake @('--install', $BuildDir, '--config', $Configuration, '--prefix', $StageDir)
}

function Build-All {
    Build-Native
    Invoke-Checked dotnet @('build', 'OnnxStream.sln', '-c', $Configuration, '-nologo')
    # Framework-dependent: only build.sh (linux-x64) publishes the CLI with Native AOT, which CI checks.
    Invoke-Checked dotnet @('publish', 'src/OnnxStream.Cli', '-c', $Configuration, '-o', 'artifacts/bin', '--no-build', '-nologo')
    # The app host is named after the assembly; the command is onnxstream.
    Copy-Item -Force 'artifacts/bin/OnnxStream.Cli.exe' 'artifacts/bin/onnxstream.exe'
}

switch ($Command) {
    'build' { Build-All }
    'test' {
        Build-All
        Invoke-Checked ctest @('--test-dir', $BuildDir, '-C', $Configuration, '--output-on-failure')
        Invoke-Checked dotnet @('test', 'OnnxStream.sln', '-c', $Configuration, '--no-build', '-nologo',
            '--filter', 'Category!=Packaging', '--logger', 'trx;LogFileName=results.trx',
            '--results-directory', 'artifacts/test-results')
    }
    'bindings' {
        # Needs clang on PATH (LLVM for Windows).
        Invoke-Checked dotnet @('run', '-c', $Configuration, '--project', 'bindings/OnnxStream.Bindings.Generator', '--',
            'native/include/onnxstream_native.h', 'bindings/generated/NativeMethods.g.cs')
    }
}
