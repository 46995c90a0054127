using System.Buffers;
using BeitV2.Ml.Serving;
using BeitV2.Web.Inference;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Web.Domains;

/// <summary>
/// The pooled feature the out-of-domain score reads, computed as serving computes it: each decoded image goes through
/// the model's <see cref="ModelInput"/> and a batch of the served model, and the feature is the one its main answer
/// carries (classify's for a classifier, the embedding's mean for a backbone, segment's for a segmenter). Fitting and
/// measuring use this, so the fit matches what an upload gets.
/// </summary>
public static class ServedFeatures
{
    private const int BatchSize = 64;

    /// <summary>The operation whose answer carries the feature, or null for a model that has no pooled feature (tokenizers).</summary>
    public static Operation? OperationOf(ServedModel model)
    {
        var served = model.Operations.Select(o => o.Operation).ToHashSet();
        if (served.Contains(Operation.Classify)) return Operation.Classify;
        if (served.Contains(Operation.Features)) return Operation.Features;
        if (served.Contains(Operation.Segment)) return Operation.Segment;
        return null;
    }

    /// <summary>The feature carried by one served answer (<paramref name="answer"/>), or null when it carries none.</summary>
    public static float[]? Of(object answer) => answer switch
    {
        ClassProbabilities p => p.Feature,
        FeaturesResult f => f.Mean,
        ClassMap m => m.Feature,
        _ => null,
    };

    /// <summary>One feature per image, in order; the images are read one at a time from <paramref name="images"/> and not kept.</summary>
    /// <exception cref="NotSupportedException">the model has no pooled feature.</exception>
    public static List<float[]> Compute(ServedModel model, IEnumerable<Image<Rgb24>> images, CancellationToken ct = default)
    {
        var operation = OperationOf(model) ?? throw new NotSupportedException($"A {model.Description} model has no pooled feature to score images by.");
        var input = new ModelInput(model.Preprocessing);
        var batch = new ImageBatch(BatchSize, input.Size);
        var result = new List<float[]>();
        var count = 0;
        void Flush()
        {
            if (count == 0) return;
            batch.SetCount(count);
            object[] answers = operation switch
            {
                Operation.Classify => model.Classify(batch),
                Operation.Features => model.Features(batch),
                _ => model.Segment(batch),
            };
            result.AddRange(answers.Select(a => Of(a) ?? throw new InvalidOperationException($"The {model.Description} model's answers carry no pooled feature.")));
            count = 0;
        }
        foreach (var image in images)
        {
            ct.ThrowIfCancellationRequested();
            using (image)
            {
                var pixels = input.Prepare(image, out _);
                try
                {
                    pixels.AsSpan(0, input.Length).CopyTo(batch.Image(count));
                }
                finally
                {
                    ArrayPool<float>.Shared.Return(pixels);
                }
            }
            if (++count == BatchSize) Flush();
        }
        Flush();
        return result;
    }
}
