using BeitV2.Ml.Imaging;

namespace BeitV2.Ml.Checkpoints;

/// <summary>
/// The input a model expects, as the manifest's optional <c>preprocessing</c> (in the spirit of timm's
/// pretrained cfg: input size, crop, interpolation, mean/std): decoded RGB pixels are resized and cropped
/// to <see cref="InputSize"/>², scaled to [0, 1] and mapped with <c>(x − mean) / std</c>, once, before the
/// model runs. Packages written before the field existed get their kind's defaults (today's behaviour)
/// from the kind's entry in <see cref="Catalog.ModelCatalog"/>.
/// </summary>
public sealed record ModelPreprocessing
{
    /// <summary>Shorter side to int(size / crop_pct), then a centre crop (the evaluation transform).</summary>
    public const string CenterCrop = "center";
    /// <summary>The whole image resized to size×size, aspect ratio not kept (segmentation: the mask covers all of it).</summary>
    public const string Squash = "squash";
    public const string Bicubic = "bicubic";

    /// <summary>Side of the square model input.</summary>
    public required int InputSize { get; init; }
    /// <summary>Colour channels (RGB); the only value served is 3.</summary>
    public int Channels { get; init; } = 3;
    /// <summary><see cref="CenterCrop"/> or <see cref="Squash"/>.</summary>
    public string CropMode { get; init; } = CenterCrop;
    /// <summary>Crop fraction of the centre crop (the shorter side is resized to int(size / crop_pct)); null for squash.</summary>
    public double? CropPct { get; init; }
    /// <summary>Resampling filter; Pillow's bicubic is the one implemented.</summary>
    public string Interpolation { get; init; } = Bicubic;
    /// <summary>Per-channel mean on [0, 1] pixels, R, G, B.</summary>
    public required double[] Mean { get; init; }
    /// <summary>Per-channel standard deviation, R, G, B.</summary>
    public required double[] Std { get; init; }

    /// <summary>The evaluation transform: shorter side to size/crop_pct (the reference's default crop_pct for the size), centre crop.</summary>
    public static ModelPreprocessing Centre(int size, PixelNormalization normalization) =>
        With(size, CenterCrop, new EvalTransform(size).CropPct, normalization);

    /// <summary>The whole image resized to size×size.</summary>
    public static ModelPreprocessing FullResize(int size, PixelNormalization normalization) =>
        With(size, Squash, null, normalization);

    private static ModelPreprocessing With(int size, string mode, double? cropPct, PixelNormalization n) => new()
    {
        InputSize = size,
        CropMode = mode,
        CropPct = cropPct,
        Mean = [n.MeanR, n.MeanG, n.MeanB],
        Std = [n.StdR, n.StdG, n.StdB],
    };

    /// <summary>Mean and std as the transform uses them.</summary>
    public PixelNormalization Normalization => new(Mean[0], Mean[1], Mean[2], Std[0], Std[1], Std[2]);

    /// <summary>Checks that the values can be served to a model whose input side is <paramref name="modelImageSize"/>.</summary>
    /// <exception cref="CheckpointException">a value this build cannot apply, or one that does not fit the model.</exception>
    public void Validate(int modelImageSize)
    {
        void Require(bool ok, string what)
        {
            if (!ok) throw new CheckpointException($"The manifest's preprocessing is not usable: {what}.");
        }
        Require(InputSize == modelImageSize, $"input_size {InputSize} differs from the model's image size {modelImageSize}");
        Require(Channels == 3, $"channels must be 3 (RGB), not {Channels}");
        Require(CropMode is CenterCrop or Squash, $"crop_mode must be '{CenterCrop}' or '{Squash}', not '{CropMode}'");
        Require(Interpolation == Bicubic, $"interpolation must be '{Bicubic}', not '{Interpolation}'");
        // Bounded so that the resize target stays within four times the input side.
        Require(CropPct is null || (CropPct >= 0.25 && CropPct <= 1.0), $"crop_pct must lie in [0.25, 1], not {CropPct}");
        Require(Mean is { Length: 3 } && Mean.All(double.IsFinite), "mean must be three finite numbers");
        Require(Std is { Length: 3 } && Std.All(s => double.IsFinite(s) && (float)s != 0f), "std must be three finite non-zero numbers");
    }
}
