using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Web.Configuration;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace BeitV2.Bench;

/// <summary>
/// Peak resident memory of a fresh BeitV2.Web with the Base classifier, tokenizer and segmenter as its default
/// models: the server's start-up warm-up (<c>Inference:WarmUp</c>) loads each and runs one full batch through it,
/// so once the log says all three warmed up, VmHWM of the process is the peak of serving all three.
/// </summary>
public static partial class ServeMemory
{
    public sealed record Result(string Engine, long PeakBytes, long RssBytes, int WarmedUp, IReadOnlyList<string> WarmUpLines, double Seconds)
    {
        public double PeakMiB => PeakBytes / 1048576.0;
    }

    /// <summary>Writes the three Base models (random weights) into <paramref name="data"/> as the defaults.</summary>
    public static void Register(string data)
    {
        var registry = new ModelRegistry(
            new DataDirectory(Options.Create(new StorageOptions { DataDirectory = data }), new HostingEnvironment { ContentRootPath = data }),
            Options.Create(new ModelsOptions { SeedDefaults = false }), NullLogger<ModelRegistry>.Instance);
        using (var vit = new BeitVisionTransformer(VitConfig.Base(1000))) registry.Add(vit, "bench-vit-base", "random initialisation (BeitV2.Bench)", makeDefault: true);
        using (var tok = new VqkdTokenizer(VqkdConfig.Base3xClip() with { QuantizeKmeansInit = false }))
            registry.Add(tok, "bench-vqkd-base", "random initialisation (BeitV2.Bench)", makeDefault: true);
        using (var seg = new BeitSegmenter(SegmentationConfig.Base(150))) registry.Add(seg, "bench-seg-base", "random initialisation (BeitV2.Bench)", makeDefault: true);
    }

    /// <summary>Starts a fresh server on <paramref name="data"/>, waits for the three warm-ups (bounded), reads VmHWM and VmRSS.</summary>
    public static async Task<Result> MeasureAsync(string data, string? engine, int threads, TimeSpan limit, Action<string> progress, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        await using var server = await ServerProcess.StartAsync(data, new BenchMode(8, 0), threads, "cpu", TimeSpan.FromSeconds(120), ct, engine: engine);
        List<string> lines = new();
        while (sw.Elapsed < limit && !server.HasExited)
        {
            lines = server.Log().Split('\n').Where(l => WarmUpLine().IsMatch(l)).Select(l => l.Trim()).ToList();
            if (lines.Count >= 3) break;
            await Task.Delay(1000, ct);
        }
        var warmed = lines.Count(l => l.Contains("Warmed up", StringComparison.Ordinal));
        progress($"  engine {engine ?? "(server default)"}: {warmed} of 3 models warmed up in {sw.Elapsed.TotalSeconds:0} s");
        return new Result(engine ?? "(server default)", Status(server.Pid, "VmHWM:"), Status(server.Pid, "VmRSS:"), warmed, lines, sw.Elapsed.TotalSeconds);
    }

    [GeneratedRegex("Warmed up|Warm-up of model")]
    private static partial Regex WarmUpLine();

    public static long Status(int pid, string field) => ProcStatusLine.Read(pid, field);
}
