namespace BeitV2.Ml.Serving;

/// <summary>Token ids of one image, row-major over the patch grid.</summary>
public sealed record TokensResult(long[] Ids);

/// <summary>Pooled features of one image: the [CLS] token and the mean of the patch tokens.</summary>
public sealed record FeaturesResult(float[] Cls, float[] Mean);

/// <summary>Softmax over the classes of one image, index = class id.</summary>
public sealed record ClassProbabilities(float[] Probabilities);

/// <summary>A class index per pixel of the model's input (row-major, <paramref name="Width"/>·<paramref name="Height"/>).</summary>
public sealed record ClassMap(int[] Classes, int Width, int Height);
