using System.Globalization;
using System.Text;
using BeitV2.Web.Registry;

namespace BeitV2.Web.Evaluation;

/// <summary>An <see cref="EvaluationResult"/> as text: the <c>evaluate</c> command's output and the job log's summary line.</summary>
public static class EvaluationReport
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>One line: the headline numbers.</summary>
    public static string Summary(EvaluationResult r) => r.Kind == ApiModelKinds.Classifier
        ? $"{r.Model} on {r.Dataset} ({r.Split}, {r.Images} images): top-1 accuracy {Percent(r.Accuracy)}" +
          (r.Top5Accuracy is null ? "" : $", top-5 {Percent(r.Top5Accuracy)}")
        : $"{r.Model} on {r.Dataset} ({r.Split}, {r.Images} images): mIoU {Percent(r.MeanIoU)}, " +
          $"pixel accuracy {Percent(r.PixelAccuracy)}, mean class accuracy {Percent(r.MeanClassAccuracy)}";

    /// <summary>The whole report: what was scored, the headline numbers, per-class scores and, for a classifier, the confusion matrix.</summary>
    public static string Text(EvaluationResult r)
    {
        var s = new StringBuilder();
        s.AppendLine(string.Create(Invariant, $"Model          {r.Model}{(r.ModelName is { } n && n != r.Model ? $" ({n})" : "")}, {r.Kind}"));
        s.AppendLine(string.Create(Invariant, $"Dataset        {r.Dataset}, {r.Split} split, {r.Images} images (seed {r.Seed})"));
        s.AppendLine($"Preprocessing  {r.Preprocessing}");
        s.AppendLine(string.Create(Invariant, $"Time           {r.Seconds:F1} s"));
        foreach (var note in r.Notes) s.AppendLine($"Note           {note}");
        s.AppendLine();
        var nameWidth = Math.Max(5, r.Classes.Max(c => c.Length));
        if (r.Kind == ApiModelKinds.Classifier)
        {
            var correct = r.ConfusionMatrix is { } m ? Enumerable.Range(0, m.Count).Sum(k => m[k][k]) : 0;
            s.AppendLine(string.Create(Invariant, $"Top-1 accuracy       {Percent(r.Accuracy)} ({correct} of {r.Images})"));
            if (r.Top5Accuracy is not null) s.AppendLine($"Top-5 accuracy       {Percent(r.Top5Accuracy)}");
            if (r.Loss is { } loss) s.AppendLine(string.Create(Invariant, $"Mean cross-entropy   {loss:F4}"));
            s.AppendLine();
            s.AppendLine("Per-class accuracy");
            s.AppendLine($"  {"class".PadRight(nameWidth)}  {"images",7}  {"accuracy",8}");
            foreach (var c in r.PerClass)
                s.AppendLine(string.Create(Invariant, $"  {c.Name.PadRight(nameWidth)}  {c.Images,7}  {Percent(c.Accuracy),8}"));
            if (r.ConfusionMatrix is { } matrix) Confusion(s, r.Classes, matrix, nameWidth);
        }
        else
        {
            s.AppendLine($"mIoU                  {Percent(r.MeanIoU)}");
            s.AppendLine($"Pixel accuracy        {Percent(r.PixelAccuracy)}");
            s.AppendLine($"Mean class accuracy   {Percent(r.MeanClassAccuracy)}");
            s.AppendLine();
            s.AppendLine("Per-class IoU and accuracy (– where the class is in neither labels nor predictions, or not in the labels)");
            s.AppendLine($"  {"class".PadRight(nameWidth)}  {"pixels",10}  {"IoU",8}  {"accuracy",8}");
            foreach (var c in r.PerClass)
                s.AppendLine(string.Create(Invariant, $"  {c.Name.PadRight(nameWidth)}  {c.Pixels,10}  {Percent(c.IoU),8}  {Percent(c.Accuracy),8}"));
        }
        if (r.Agreement is { } a) Agreement(s, a);
        return s.ToString();
    }

    /// <summary>The segmenter against a classifier on isolated items: the four rates, with the counts behind them.</summary>
    private static void Agreement(StringBuilder s, AgreementResult a)
    {
        string Line(string what, double? rate) =>
            string.Create(Invariant, $"  {what,-42}  {Percent(rate),8}  ({(rate is { } v ? Math.Round(v * a.Items) : 0)} of {a.Items})");
        s.AppendLine();
        s.AppendLine($"Segmenter vs classifier {a.Classifier} on {a.Items.ToString(Invariant)} isolated items");
        s.AppendLine($"  ({a.Setup})");
        s.AppendLine(Line("classifier right", a.ClassifierAccuracy));
        s.AppendLine(Line("segmenter right (majority of item pixels)", a.SegmenterAccuracy));
        s.AppendLine(Line("segmenter agrees with classifier", a.Agreement));
        s.AppendLine(Line("item mostly called background", a.BackgroundShare));
    }

    /// <summary>Rows the true class (full names), columns the predicted one (names cut to the column width).</summary>
    private static void Confusion(StringBuilder s, IReadOnlyList<string> classes, IReadOnlyList<IReadOnlyList<long>> matrix, int nameWidth)
    {
        var width = Math.Max(Math.Max(5, matrix.SelectMany(row => row).DefaultIfEmpty(0).Max().ToString(Invariant).Length), Math.Min(7, classes.Max(c => c.Length)));
        s.AppendLine();
        s.AppendLine("Confusion matrix (rows: true class, columns: predicted class)");
        s.Append("  ").Append(new string(' ', nameWidth));
        foreach (var c in classes) s.Append("  ").Append((c.Length > width ? c[..width] : c).PadLeft(width));
        s.AppendLine();
        for (var t = 0; t < matrix.Count; t++)
        {
            s.Append("  ").Append(classes[t].PadRight(nameWidth));
            foreach (var v in matrix[t]) s.Append("  ").Append(v.ToString(Invariant).PadLeft(width));
            s.AppendLine();
        }
    }

    private static string Percent(double? v) => v is { } x ? (100 * x).ToString("0.00", Invariant) + " %" : "–";
}
