namespace OnnxStream.Tests.Models;

/// <summary>Locates <c>../shared</c> (beside the repository); tests that need it skip with a clear message without it.</summary>
internal static class SharedFixtures
{
    /// <summary>The repository root (the folder holding OnnxStream.sln).</summary>
    public static string RepositoryRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "OnnxStream.sln"))) return dir.FullName;
            throw new InvalidOperationException("OnnxStream.sln not found above the test directory.");
        }
    }

    /// <summary>The path of a fixture under ../shared, or an Ignore with the reason when it is absent.</summary>
    public static string Require(string relativePath)
    {
        var path = Path.GetFullPath(Path.Combine(RepositoryRoot, "..", "shared", relativePath));
        if (!File.Exists(path) && !Directory.Exists(path))
            Assert.Ignore($"Skipped: the shared fixture {path} is absent (../shared beside the repository holds the test models).");
        return path;
    }
}
