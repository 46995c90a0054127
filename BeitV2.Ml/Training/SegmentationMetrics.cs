using static TorchSharp.torch;

namespace BeitV2.Ml.Training;

/// <summary>
/// mmseg 0.11 <c>mean_iou</c> over a whole split: per-class intersection, union, prediction and label
/// areas summed over all images (pixels labelled ignore_index excluded); IoU_k = I_k / U_k, NaN for a
/// class absent from both prediction and ground truth; mIoU = mean over the other classes (nanmean).
/// mAcc = mean over classes present in the labels of I_k / label_k; aAcc = ΣI / Σlabel.
/// </summary>
public sealed class SegmentationMetrics
{
    private readonly double[] intersect, union, predArea, labelArea;

    public SegmentationMetrics(int numClasses, int ignoreIndex = 255)
    {
        if (numClasses <= 0) throw new ArgumentException("numClasses must be positive.", nameof(numClasses));
        NumClasses = numClasses;
        IgnoreIndex = ignoreIndex;
        intersect = new double[numClasses];
        union = new double[numClasses];
        predArea = new double[numClasses];
        labelArea = new double[numClasses];
    }

    public int NumClasses { get; }
    public int IgnoreIndex { get; }

    /// <summary>Adds (…, H, W) predicted and ground-truth class maps of the same shape.</summary>
    public void Update(Tensor prediction, Tensor label)
    {
        using var scope = NewDisposeScope();
        var p = prediction.to(ScalarType.Int64).flatten();
        var l = label.to(ScalarType.Int64).flatten();
        if (p.shape[0] != l.shape[0]) throw new ArgumentException("Prediction and label sizes differ.");
        var valid = l.ne(IgnoreIndex);
        p = p.masked_select(valid);
        l = l.masked_select(valid);
        var hit = p.masked_select(p.eq(l));
        var ai = Histogram(hit);
        var ap = Histogram(p);
        var al = Histogram(l);
        for (var k = 0; k < NumClasses; k++)
        {
            intersect[k] += ai[k];
            predArea[k] += ap[k];
            labelArea[k] += al[k];
            union[k] += ap[k] + al[k] - ai[k];
        }
    }

    private double[] Histogram(Tensor values)
    {
        // torch.histc(bins=K, min=0, max=K−1) as mmseg: values outside 0..K−1 are not counted.
        var inRange = values.masked_select(values.ge(0) & values.lt(NumClasses));
        return bincount(inRange, minlength: NumClasses).to(float64).cpu().data<double>().Take(NumClasses).ToArray();
    }

    /// <summary>Per-class IoU, NaN for classes absent from both predictions and labels.</summary>
    public double[] ClassIoU => Enumerable.Range(0, NumClasses).Select(k => union[k] > 0 ? intersect[k] / union[k] : double.NaN).ToArray();

    /// <summary>Per-class accuracy (correct pixels / labelled pixels of the class), NaN for classes absent from the labels.</summary>
    public double[] ClassAccuracy => Enumerable.Range(0, NumClasses).Select(k => labelArea[k] > 0 ? intersect[k] / labelArea[k] : double.NaN).ToArray();

    /// <summary>Labelled pixels per class (ignore_index excluded).</summary>
    public double[] LabelPixels => (double[])labelArea.Clone();

    /// <summary>Predicted pixels per class (on labelled pixels only).</summary>
    public double[] PredictedPixels => (double[])predArea.Clone();

    public double MeanIoU => NanMean(ClassIoU);
    public double MeanAccuracy => NanMean(ClassAccuracy);
    public double PixelAccuracy => labelArea.Sum() > 0 ? intersect.Sum() / labelArea.Sum() : double.NaN;

    private static double NanMean(IEnumerable<double> values)
    {
        var present = values.Where(v => !double.IsNaN(v)).ToList();
        return present.Count == 0 ? double.NaN : present.Average();
    }
}
