namespace BeitV2.Ml.Serving;

/// <summary>Token ids of one image, row-major over the patch grid.</summary>
public sealed record TokensResult(long[] Ids);

/// <summary>Pooled features of one image: the [CLS] token and the mean of the patch tokens.</summary>
public sealed record FeaturesResult(float[] Cls, float[] Mean);

/// <summary>Softmax over the classes of one image, index = class id.</summary>
/// <param name="Feature">the image's pooled feature from the same forward pass (<see cref="FeaturesResult.Mean"/>: for a
/// mean-pooling classifier the head's input), which the out-of-domain score reads; null where an engine gives none.</param>
public sealed record ClassProbabilities(float[] Probabilities, float[]? Feature = null);

/// <summary>A class index per pixel of the model's input (row-major, <paramref name="Width"/>·<paramref name="Height"/>).</summary>
/// <param name="Feature">the backbone's pooled feature from the same forward pass (the mean of the deepest pyramid level's patch
/// tokens, before the necks), which the out-of-domain score reads; null where an engine gives none.</param>
public sealed record ClassMap(int[] Classes, int Width, int Height, float[]? Feature = null);
