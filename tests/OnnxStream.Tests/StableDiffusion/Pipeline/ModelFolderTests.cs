using OnnxStream.StableDiffusion.Models;
using OnnxStream.StableDiffusion.Pipeline;

namespace OnnxStream.Tests.StableDiffusion.Pipeline;

/// <summary><see cref="StableDiffusionModelFolder"/> on the original's published SDXL folder layouts (empty model files).</summary>
internal sealed class ModelFolderTests
{
    /// <summary>
    /// The folders of the original's SDXL 1.0 base and SDXL Turbo downloads (its sd.cpp lists them), also as snapshots
    /// of a hub cache, whose folder is named by the commit and Turbo only by the repository's folder above it.
    /// </summary>
    [TestCase("stable-diffusion-xl-base-1.0-onnxstream", ModelKind.StableDiffusionXL, "sdxl_unet_fp16", "sdxl_vae_decoder_fp16", true,
        new[] { "sdxl_unet_fp16", "sdxl_vae_decoder_32x32_fp16", "sdxl_vae_decoder_fp16" })]
    [TestCase("stable-diffusion-xl-turbo-1.0-anyshape-onnxstream", ModelKind.StableDiffusionXLTurbo, "sdxl_unet_anyshape_fp16", "sdxl_vae_decoder_anyshape_fp16", false,
        new[] { "sdxl_unet_anyshape_fp16", "sdxl_vae_decoder_anyshape_fp16" })]
    [TestCase("hub/models--vitoplantamura--stable-diffusion-xl-turbo-1.0-anyshape-onnxstream/snapshots/0123abcd", ModelKind.StableDiffusionXLTurbo,
        "sdxl_unet_anyshape_fp16", "sdxl_vae_decoder_anyshape_fp16", false, new[] { "sdxl_unet_anyshape_fp16", "sdxl_vae_decoder_anyshape_fp16" })]
    [TestCase("hub/models--vitoplantamura--stable-diffusion-xl-base-1.0-onnxstream/snapshots/0123abcd", ModelKind.StableDiffusionXL,
        "sdxl_unet_fp16", "sdxl_vae_decoder_fp16", true, new[] { "sdxl_unet_fp16", "sdxl_vae_decoder_32x32_fp16", "sdxl_vae_decoder_fp16" })]
    public void The_original_sdxl_folders_are_recognized(string name, ModelKind kind, string unet, string decoder, bool tileDecoder, string[] folders)
    {
        var temporary = Directory.CreateTempSubdirectory("sd-folder-").FullName;
        var root = Path.Combine(temporary, name);
        try
        {
            foreach (var folder in folders.Concat(["sdxl_text_encoder_1_fp32", "sdxl_text_encoder_2_fp32"]))
            {
                Directory.CreateDirectory(Path.Combine(root, folder));
                File.WriteAllText(Path.Combine(root, folder, "model.txt"), "");
            }
            Directory.CreateDirectory(Path.Combine(root, "sdxl_tokenizer"));
            foreach (var file in new[] { "vocab.txt", "merges.txt" }) File.WriteAllText(Path.Combine(root, "sdxl_tokenizer", file), "");

            var models = StableDiffusionModelFolder.Open(root);
            Assert.Multiple(() =>
            {
                Assert.That(models.Kind, Is.EqualTo(kind));
                Assert.That(models.UNet, Is.EqualTo(Path.Combine(root, unet)));
                Assert.That(models.VaeDecoder, Is.EqualTo(Path.Combine(root, decoder)));
                Assert.That(models.VaeTileDecoder, tileDecoder ? Is.EqualTo(Path.Combine(root, "sdxl_vae_decoder_32x32_fp16")) : Is.Null);
                Assert.That(models.TextEncoder2, Is.EqualTo(Path.Combine(root, "sdxl_text_encoder_2_fp32")));
            });
        }
        finally
        {
            Directory.Delete(temporary, true);
        }
    }
}
