using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Net.Http.Headers;
using BeitV2.Ml.Models;
using BeitV2.Web.Configuration;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace BeitV2.Bench;

/// <summary>
/// The <c>flood</c> command: a pixel flood (tiny files that declare huge images) against a real server process. Each request carries
/// many tiny PNGs whose headers declare huge images (a few kilobytes on the wire); the bench prints the
/// server's peak resident memory (VmHWM from /proc), the status and latency of every request, and whether
/// <c>/health/live</c> kept answering. A watchdog kills the server once its RSS passes <c>--rss-cap-gib</c>
/// so that measuring the unbounded behaviour cannot take the machine down with it.
/// </summary>
public static class FloodBench
{
    public const string Usage = """
        flood [--requests 4] [--images 32] [--width 6000] [--height 6000] [--rss-cap-gib 8] [--timeout-s 300] [--route classify] [--valid]
          4 concurrent requests of 32 header-only PNG "bombs" each; prints peak RSS, statuses, latency and liveness.
          --valid sends complete PNGs (zero pixels, ~1000:1 compressed) that really decode, to exercise the decode budget.
        """;

    public static async Task<int> RunAsync(IReadOnlyList<string> args, CancellationToken ct)
    {
        int requests = 4, images = 32, width = 6000, height = 6000, timeoutS = 300;
        double capGiB = 8;
        var route = "classify";
        var valid = false;
        for (var i = 0; i < args.Count; i++)
        {
            string Next() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--requests": requests = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--images": images = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--width": width = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--height": height = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--rss-cap-gib": capGiB = double.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--timeout-s": timeoutS = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--route": route = Next(); break;
                case "--valid": valid = true; break;
                default: throw new ArgumentException($"Unknown option '{args[i]}'.");
            }
        }

        var data = Path.Combine(Path.GetTempPath(), $"beitv2-flood-{Guid.NewGuid():N}"[..26]);
        Directory.CreateDirectory(data);
        try
        {
            // A tiny random classifier: the flood is about decoding, not the forward pass.
            var registry = new ModelRegistry(
                new DataDirectory(Options.Create(new StorageOptions { DataDirectory = data }), new HostingEnvironment { ContentRootPath = data }),
                Options.Create(new ModelsOptions { SeedDefaults = false }), NullLogger<ModelRegistry>.Instance);
            using (var model = new BeitVisionTransformer(VitConfig.Tiny(numClasses: 10)))
                registry.Add(model, "flood-vit-tiny", "random initialisation (BeitV2.Bench flood)", makeDefault: true);

            await using var server = await ServerProcess.StartAsync(data, new BenchMode(1, 0), 2, "cpu", TimeSpan.FromSeconds(120), ct);
            using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(timeoutS) };

            // Warm up (loads the model) with one small valid image, so the baseline includes the model.
            var small = BenchImage.Load(null);
            using (var warm = await http.PostAsync("api/v1/" + route, Form([small.Bytes]), ct))
                Console.WriteLine($"warm-up request: {(int)warm.StatusCode}");
            var baseline = ReadStatus(server.Pid);
            Console.WriteLine($"server pid {server.Pid}: VmRSS {Mib(baseline.Rss)} MiB, VmHWM {Mib(baseline.Hwm)} MiB after warm-up");

            var bomb = valid ? ZeroPng(width, height) : HeaderOnlyPng(width, height);
            Console.WriteLine($"flood: {requests} concurrent requests × {images} PNGs of {bomb.Length} bytes declaring {width}×{height} " +
                              $"({(long)width * height * images / 1e6:0} MP per request, {bomb.Length * images} bytes on the wire)");

            // Watchdog: samples RSS, kills the server past the cap (the figure is then a lower bound).
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            long capBytes = (long)(capGiB * 1024 * 1024 * 1024), peakSampled = 0;
            var killed = false;
            var watchdog = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    var s = ReadStatus(server.Pid);
                    peakSampled = Math.Max(peakSampled, Math.Max(s.Rss, s.Hwm));
                    if (s.Rss > capBytes)
                    {
                        killed = true;
                        try { Process.GetProcessById(server.Pid).Kill(entireProcessTree: true); } catch (ArgumentException) { }
                        return;
                    }
                    try { await Task.Delay(20, stop.Token); } catch (OperationCanceledException) { return; }
                }
            });

            // Liveness probe during the flood.
            var liveLatencies = new List<double>();
            var liveFailures = 0;
            var probe = Task.Run(async () =>
            {
                using var liveHttp = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(10) };
                while (!stop.IsCancellationRequested)
                {
                    var sw = Stopwatch.StartNew();
                    try
                    {
                        using var r = await liveHttp.GetAsync("health/live", stop.Token);
                        if (r.IsSuccessStatusCode) liveLatencies.Add(sw.Elapsed.TotalMilliseconds); else liveFailures++;
                    }
                    catch (OperationCanceledException) when (stop.IsCancellationRequested) { return; }
                    catch (Exception) { liveFailures++; }
                    try { await Task.Delay(250, stop.Token); } catch (OperationCanceledException) { return; }
                }
            });

            var total = Stopwatch.StartNew();
            var results = await Task.WhenAll(Enumerable.Range(0, requests).Select(async i =>
            {
                var sw = Stopwatch.StartNew();
                try
                {
                    using var r = await http.PostAsync("api/v1/" + route, Form(Enumerable.Repeat(bomb, images)), ct);
                    var body = await r.Content.ReadAsStringAsync(ct);
                    return (Status: ((int)r.StatusCode).ToString(CultureInfo.InvariantCulture), Ms: sw.Elapsed.TotalMilliseconds, Body: body);
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    return (Status: "no answer", Ms: sw.Elapsed.TotalMilliseconds, Body: e.Message);
                }
            }));
            var wall = total.Elapsed.TotalSeconds;
            bool liveAfter;
            try
            {
                using var r = await http.GetAsync("health/live", ct);
                liveAfter = r.IsSuccessStatusCode;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { liveAfter = false; }
            var final = killed ? default : ReadStatus(server.Pid);
            await stop.CancelAsync();
            await Task.WhenAll(watchdog, probe);

            var peak = Math.Max(final.Hwm, peakSampled);
            Console.WriteLine();
            Console.WriteLine("| figure | value |");
            Console.WriteLine("|---|---|");
            Console.WriteLine($"| peak RSS (VmHWM) | {Mib(peak)} MiB ({peak / (1024.0 * 1024 * 1024):0.00} GiB){(killed ? $" — killed at the {capGiB} GiB cap, a lower bound" : "")} |");
            Console.WriteLine($"| RSS before the flood | {Mib(baseline.Rss)} MiB |");
            Console.WriteLine($"| statuses | {string.Join(", ", results.GroupBy(r => r.Status).Select(g => $"{g.Key} ×{g.Count()}"))} |");
            Console.WriteLine($"| latency per request (ms) | {string.Join(", ", results.Select(r => r.Ms.ToString("0", CultureInfo.InvariantCulture)))} |");
            Console.WriteLine($"| flood wall time | {wall:0.0} s |");
            Console.WriteLine($"| /health/live during the flood | {liveLatencies.Count} ok, {liveFailures} failed, max {(liveLatencies.Count > 0 ? liveLatencies.Max() : double.NaN):0} ms |");
            Console.WriteLine($"| /health/live after the flood | {(liveAfter ? "200" : "no answer")} |");
            foreach (var r in results.DistinctBy(r => r.Status))
                Console.WriteLine($"\n{r.Status}: {(r.Body.Length > 400 ? r.Body[..400] + "…" : r.Body)}");
            return 0;
        }
        finally
        {
            try { Directory.Delete(data, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private static MultipartFormDataContent Form(IEnumerable<byte[]> images)
    {
        var form = new MultipartFormDataContent();
        var i = 0;
        foreach (var bytes in images)
        {
            var part = new ByteArrayContent(bytes);
            part.Headers.ContentType = new MediaTypeHeaderValue("image/png");
            form.Add(part, "image", $"bomb{i++}.png");
        }
        return form;
    }

    /// <summary>The PNG signature and an IHDR for an 8-bit RGB image of <paramref name="width"/>×<paramref name="height"/>.</summary>
    private static void WriteSignatureAndHeader(Stream ms, int width, int height)
    {
        ms.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; // bit depth
        ihdr[9] = 2; // colour type: RGB
        Chunk(ms, "IHDR", ihdr);
    }

    /// <summary>A complete PNG structure whose IDAT inflates to one byte while the header declares width×height RGB pixels.</summary>
    public static byte[] HeaderOnlyPng(int width, int height)
    {
        using var ms = new MemoryStream();
        WriteSignatureAndHeader(ms, width, height);
        using (var z = new MemoryStream())
        {
            using (var zl = new ZLibStream(z, CompressionLevel.Optimal, leaveOpen: true)) zl.Write([0]);
            Chunk(ms, "IDAT", z.ToArray());
        }
        Chunk(ms, "IEND", []);
        return ms.ToArray();
    }

    /// <summary>A complete 8-bit RGB PNG of black pixels: small on the wire, width×height×3 bytes once decoded.</summary>
    public static byte[] ZeroPng(int width, int height)
    {
        using var ms = new MemoryStream();
        WriteSignatureAndHeader(ms, width, height);
        using (var z = new MemoryStream())
        {
            using (var zl = new ZLibStream(z, CompressionLevel.SmallestSize, leaveOpen: true))
            {
                var row = new byte[1 + 3 * width];
                for (var y = 0; y < height; y++) zl.Write(row);
            }
            Chunk(ms, "IDAT", z.ToArray());
        }
        Chunk(ms, "IEND", []);
        return ms.ToArray();
    }

    private static void Chunk(Stream s, string type, byte[] payload)
    {
        Span<byte> u32 = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(u32, payload.Length);
        s.Write(u32);
        var typeAndData = System.Text.Encoding.ASCII.GetBytes(type).Concat(payload).ToArray();
        s.Write(typeAndData);
        BinaryPrimitives.WriteUInt32BigEndian(u32, Crc(typeAndData));
        s.Write(u32);
    }

    private static uint Crc(byte[] data)
    {
        uint c = 0xFFFFFFFF;
        foreach (var b in data)
        {
            c ^= b;
            for (var k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return c ^ 0xFFFFFFFF;
    }

    private readonly record struct ProcStatus(long Rss, long Hwm);

    private static ProcStatus ReadStatus(int pid)
    {
        try
        {
            long rss = 0, hwm = 0;
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) rss = Kib(line);
                else if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) hwm = Kib(line);
            }
            return new ProcStatus(rss, hwm);
        }
        catch (IOException) { return default; }

        static long Kib(string line) => ProcStatusLine.Bytes(line) ?? 0;
    }

    private static string Mib(long bytes) => (bytes / (1024.0 * 1024)).ToString("0", CultureInfo.InvariantCulture);
}
