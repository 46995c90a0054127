using System.Text.Json;
using BeitV2.Ml.Data;
using BeitV2.Ml.Imaging.Rendering;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Ml.Training;
using BeitV2.Web.Commands;
using BeitV2.Web.Datasets;
using BeitV2.Web.Tests.Api;
using Microsoft.Extensions.DependencyInjection;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Web.Tests.Jobs;

/// <summary>The <c>evaluate</c> command, run in this process on a data folder as the server would use it.</summary>
[Collection(JobsCollection.Name)]
public sealed class EvaluateCommandTests
{
    private static (int Code, string Output, string Errors) Evaluate(params string[] args)
    {
        using var output = new StringWriter();
        using var errors = new StringWriter();
        var code = EvaluateCommand.Run([.. args, "--threads", "1"], output, errors);
        return (code, output.ToString(), errors.ToString());
    }

    [Fact]
    public void AClassifierByName_PrintsItsAccuracyAndConfusionMatrix_AndWritesTheResult()
    {
        using var host = new ApiHost();
        var model = host.Seed(EvaluateJobTests.TinyClassifier(), "tiny fashion classifier", EvaluateJobTests.FashionClasses);
        using var folder = new TempDirectory();
        var json = folder.File("result.json");

        var (code, output, errors) = Evaluate("--model", "Tiny Fashion Classifier", "--data", host.DataDirectory,
            "--max-images", "24", "--batch-size", "8", "--json", json);

        Assert.True(code == 0, errors);
        var result = JsonDocument.Parse(File.ReadAllText(json)).RootElement;
        Assert.Equal(model.Id, result.Str("model"));
        Assert.Equal("fashion-mnist", result.Str("dataset"));
        Assert.Equal(24, result.Int("images"));
        var matrix = result.Items("confusionMatrix").Select(r => r.EnumerateArray().Select(v => v.GetInt64()).ToArray()).ToArray();
        var correct = Enumerable.Range(0, 10).Sum(k => matrix[k][k]);
        Assert.Equal(24, matrix.Sum(r => r.Sum()));
        Assert.Equal(correct / 24.0, result.GetProperty("accuracy").GetDouble(), 12);

        Assert.Contains(FormattableString.Invariant($"Top-1 accuracy       {100.0 * correct / 24:0.00} % ({correct} of 24)"), output);
        Assert.Contains("Per-class accuracy", output);
        Assert.Contains("Confusion matrix (rows: true class, columns: predicted class)", output);
        // Each row of the matrix: the true class's name, then its counts.
        var lines = output.Split('\n');
        var header = Array.FindIndex(lines, l => l.StartsWith("Confusion matrix", StringComparison.Ordinal));
        for (var t = 0; t < 10; t++)
        {
            var cells = lines[header + 2 + t].Trim();
            Assert.StartsWith(EvaluateJobTests.FashionClasses[t], cells);
            Assert.EndsWith(string.Join(" ", matrix[t]), string.Join(" ", cells.Split(' ', StringSplitOptions.RemoveEmptyEntries)));
        }
        Assert.Contains("scoring " + model.Id, errors);
    }

    [Fact]
    public void OnAFreshDataFolder_TheBundledDefaultClassifierIsSeededAndScored()
    {
        using var data = new TempDirectory();
        var (code, output, errors) = Evaluate("--model", "default:classifier", "--data", data.Path, "--max-images", "16");
        Assert.True(code == 0, errors);
        Assert.Contains("classifier-fashion-bbcace", output);
        Assert.Contains("Top-1 accuracy", output);
        Assert.Contains("Ankle boot", output);
        Assert.True(Directory.Exists(Path.Combine(data.Path, "models")));
    }

    [Fact]
    public void ASegmenter_WithAgreementAndGrid_PrintsTheFourRates_AndDrawsItsScenesInTheOverlayColours()
    {
        using var host = new ApiHost();
        TrainerBase.SeedEverything(2);
        var segmenter = host.Seed(new BeitSegmenter(SegmentationConfig.Micro(numClasses: 11)), "tiny scene segmenter", ["background", .. EvaluateJobTests.FashionClasses]);
        var classifier = host.Seed(EvaluateJobTests.TinyClassifier(), "tiny fashion classifier", EvaluateJobTests.FashionClasses);
        using var folder = new TempDirectory();
        var json = folder.File("result.json");
        var grid = folder.File("grid.png");

        const int items = 20;
        var (code, output, errors) = Evaluate("--model", segmenter.Id, "--data", host.DataDirectory, "--max-images", "4", "--batch-size", "4",
            "--agreement-with", classifier.Id, "--agreement-items", $"{items}", "--grid", grid, "--grid-scenes", "2", "--json", json);

        Assert.True(code == 0, errors);
        var agreement = JsonDocument.Parse(File.ReadAllText(json)).RootElement.GetProperty("agreement");
        Assert.Equal(segmenter.Id, agreement.Str("segmenter"));
        Assert.Equal(classifier.Id, agreement.Str("classifier"));
        Assert.Equal(items, agreement.Int("items"));
        double Rate(string name)
        {
            var v = agreement.GetProperty(name).GetDouble();
            Assert.InRange(v, 0, 1);
            Assert.Equal(Math.Round(v * items), v * items, 9); // a count of the 20 items
            return v;
        }
        var (right, segmenterRight, agree) = (Rate("classifierAccuracy"), Rate("segmenterAccuracy"), Rate("agreement"));
        Rate("backgroundShare");
        // Counting bounds: items both get right agree; items on which they agree are right for both or wrong for one at least.
        Assert.InRange(agree, right + segmenterRight - 1 - 1e-9, 1 - Math.Abs(right - segmenterRight) + 1e-9);
        Assert.Contains($"Segmenter vs classifier {classifier.Id} on {items} isolated items", output);
        foreach (var line in new[] { "classifier right", "segmenter right (majority of item pixels)", "segmenter agrees with classifier", "item mostly called background" })
            Assert.Contains(line, output);

        // The grid: 2 scenes of the micro segmenter's 64 px input at 4x = 256 px cells; 3 cells + 4 gaps of 4 px wide,
        // 2 rows + 3 gaps high, then one legend row of 16 px swatches (39 fit in the width) and its gap.
        using var picture = Image.Load<Rgb24>(grid);
        Assert.Equal((3 * 256 + 16, 2 * 256 + 12 + 20), (picture.Width, picture.Height));
        Assert.Empty(Directory.GetFiles(folder.Path, "*.tmp-*"));
        // The ground-truth column is the scenes' masks, as the model's evaluation transform sizes them, in the overlay's palette.
        var (_, scenes) = host.Services.GetRequiredService<DatasetCatalog>().Open("fashion-mnist-seg", 1, 2, 0);
        for (var r = 0; r < 2; r++)
        {
            var mask = new SegmentationEvalTransform(64).Apply(scenes!.Get(r), new Random(0)).Mask!;
            var garment = Array.FindIndex(mask, v => v != 0);
            Assert.True(garment >= 0);
            foreach (var i in new[] { 0, garment, mask.Length / 2, mask.Length - 1 })
            {
                var (x, y) = (i % 64, i / 64);
                Assert.Equal(Palette.Default[mask[i]], picture[4 + 260 + 4 * x + 2, 4 + 260 * r + 4 * y + 1]);
            }
        }
        Assert.Contains("legend swatches, left to right: background #000000, T-shirt/top #", output);
        Assert.Contains("wrote " + grid, output);
    }

    [Fact]
    public void BadArguments_ExitWithCode2_AndSayWhy()
    {
        using var host = new ApiHost();
        var tokenizer = host.Seed(new VqkdTokenizer(VqkdConfig.Micro() with { QuantizeKmeansInit = false }), "tok");

        var missing = Evaluate("--data", host.DataDirectory);
        Assert.Equal(2, missing.Code);
        Assert.Contains("--model is required", missing.Errors);
        Assert.Contains("Usage: evaluate", missing.Errors);
        Assert.Equal(2, Evaluate("--model", "x", "--max-images", "0").Code);
        Assert.Equal(2, Evaluate("--model", "x", "--colour", "blue").Code);
        using var folder = new TempDirectory();
        var nowhere = Evaluate("--model", "x", "--json", folder.Combine("missing", "result.json"));
        Assert.Equal(2, nowhere.Code);
        Assert.Contains("does not exist", nowhere.Errors);

        var unknown = Evaluate("--model", "no-such-model", "--data", host.DataDirectory);
        Assert.Equal(2, unknown.Code);
        Assert.Contains("No model with the id or name 'no-such-model'", unknown.Errors);
        var kind = Evaluate("--model", tokenizer.Id, "--data", host.DataDirectory);
        Assert.Equal(2, kind.Code);
        Assert.Contains("is a tokenizer", kind.Errors);
        Assert.Equal("", kind.Output);

        // The agreement and the grid are a segmenter's, the agreement with a Fashion-MNIST classifier.
        var classifier = host.Seed(EvaluateJobTests.TinyClassifier(), "tiny fashion classifier", EvaluateJobTests.FashionClasses);
        var segmenter = host.Seed(new BeitSegmenter(SegmentationConfig.Micro(numClasses: 11)), "tiny scene segmenter", ["background", .. EvaluateJobTests.FashionClasses]);
        var notASegmenter = Evaluate("--model", classifier.Id, "--data", host.DataDirectory, "--agreement-with", classifier.Id);
        Assert.Equal(2, notASegmenter.Code);
        Assert.Contains($"--agreement-with needs a segmenter as --model; '{classifier.Id}' is a classifier", notASegmenter.Errors);
        var notAClassifier = Evaluate("--model", segmenter.Id, "--data", host.DataDirectory, "--agreement-with", segmenter.Id);
        Assert.Equal(2, notAClassifier.Code);
        Assert.Contains("is a segmenter, not a classifier", notAClassifier.Errors);
        var gridOfAClassifier = Evaluate("--model", classifier.Id, "--data", host.DataDirectory, "--grid", folder.File("g.png"));
        Assert.Equal(2, gridOfAClassifier.Code);
        Assert.Contains("--grid needs a segmenter", gridOfAClassifier.Errors);
        Assert.Contains("needs --agreement-with", Evaluate("--model", "x", "--agreement-items", "5").Errors);
        Assert.Contains("needs --grid", Evaluate("--model", "x", "--grid-scenes", "5").Errors);
        Assert.Contains("at most 32 scenes", Evaluate("--model", "x", "--grid", folder.File("g.png"), "--grid-scenes", "33").Errors);
        Assert.Contains("ending in .png, not 'g.jpg'", Evaluate("--model", "x", "--grid", folder.File("g.jpg")).Errors);
        Assert.Contains("does not exist", Evaluate("--model", "x", "--grid", folder.Combine("missing", "g.png")).Errors);
        Assert.Equal(2, Evaluate("--model", "x", "--grid", folder.File("g.png"), "--grid-scenes", "0").Code);
        Assert.False(File.Exists(folder.File("g.png")));
    }
}
