using System.Text.Json;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Web.Commands;
using BeitV2.Web.Tests.Api;

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
        Assert.Contains("the-served-classifier", output);
        Assert.Contains("Top-1 accuracy", output);
        Assert.Contains("Ankle boot", output);
        Assert.True(Directory.Exists(Path.Combine(data.Path, "models")));
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
    }
}
