using System.Text.Json;
using TorchSharp;

namespace BeitV2.Ml.Tests.Imaging;

/// <summary>
/// Read-only access to the "preprocess" fixture: preprocess.json plus the safetensors holding the
/// reference crops and model inputs (see the fixtures README).
/// </summary>
internal static class PreprocessReference
{
    private static readonly Lazy<JsonElement> Json = new(() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(FixturePaths.ReferenceDir, "preprocess.json"))).RootElement);

    public static string ImagePath(string stem) =>
        Path.Combine(FixturePaths.ImagesDir, Json.Value.GetProperty("images").GetProperty(stem).GetProperty("file").GetString()!);

    /// <summary>The <c>transform_224</c> entry of one image.</summary>
    public static JsonElement Transform224(string stem) =>
        Json.Value.GetProperty("images").GetProperty(stem).GetProperty("transform_224");

    public static int[] Ints(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt32()).ToArray();

    /// <summary><c>&lt;stem&gt;.crop_u8_224</c>: uint8 (224,224,3) HWC.</summary>
    public static byte[] CropU8(string stem) =>
        ReadTensor(Path.Combine(FixturePaths.ReferenceDir, "preprocess.io.safetensors"), $"{stem}.crop_u8_224",
            [224, 224, 3], t => t.data<byte>().ToArray());

    /// <summary><c>pixel_values_224</c>: float32 (1,3,224,224).</summary>
    public static float[] PixelValues(string stem) =>
        ReadTensor(Path.Combine(FixturePaths.ReferenceDir, $"preprocess_{stem}.io.safetensors"), "pixel_values_224",
            [1, 3, 224, 224], t => t.data<float>().ToArray());

    private static T ReadTensor<T>(string path, string key, long[] shape, Func<torch.Tensor, T> read)
    {
        var tensors = TorchSharp.PyBridge.Safetensors.LoadStateDict(path);
        try
        {
            var t = tensors[key];
            Assert.Equal(shape, t.shape);
            return read(t);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }
}
