using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Jobs;
using BeitV2.Web.Tests.Api;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace BeitV2.Web.Tests.Storage;

/// <summary>
/// Dataset uploads cannot fill the disk: every file decodes during the import, the declared and the
/// inflated sizes are bounded (Storage:MaxDatasetBytes), the quota (Storage:MaxDataBytes) and the free
/// space are checked before writing (507), and the body streams into one staging file in the data folder.
/// </summary>
[Collection(ApiCollection.Name)]
public sealed class DatasetUploadStorageTests
{
    [Fact]
    public async Task ZeroFilledPngZip_Gets422_AndWritesNothing()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        // 16 × 32 MiB of zeros named .png: a ~0.5 MB zip that used to write 512 MiB (2 GiB with 64 entries).
        var zeros = new byte[32 * 1024 * 1024];
        var zip = Zip(CompressionLevel.SmallestSize, Enumerable.Range(0, 16).Select(i => ($"shirts/{i}.png", zeros)).ToArray());
        Assert.True(zip.Length < 2_000_000, $"{zip.Length} bytes");

        var detail = await client.PostAsync("/api/v1/datasets", Form(zip)).ProblemAsync(422);

        Assert.Contains("is not an image", detail);
        AssertNothingStored(host);
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task ArchiveDeclaringMoreThanMaxDatasetBytes_Gets413_BeforeExtraction()
    {
        using var host = new ApiHost(new Dictionary<string, string?> { ["Storage:MaxDatasetBytes"] = "100000" });
        using var client = host.CreateClient();
        var noise = DataTestFiles.NoisePngBytes(200, 200, seed: 1); // ~120 KB, above the limit on its own
        var zip = Zip(("a/1.png", TestImages.Png(20, 20)), ("b/1.png", noise));

        var detail = await client.PostAsync("/api/v1/datasets", Form(zip)).ProblemAsync(413);

        Assert.Contains("Storage:MaxDatasetBytes", detail);
        AssertNothingStored(host);
        // Under the limit the same kind of upload is accepted.
        await client.PostAsync("/api/v1/datasets", Form(Zip(("a/1.png", TestImages.Png(20, 20)), ("b/1.png", TestImages.Png(20, 20, 1)))))
            .JsonAsync(HttpStatusCode.Created);
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task DataQuotaExceeded_Gets507_BeforeTheUploadOrTheExtractionIsWritten()
    {
        using var host = new ApiHost(new Dictionary<string, string?> { ["Storage:MaxDataBytes"] = "20000000" });
        using var client = host.CreateClient();

        // 25 MB upload > 20 MB quota: refused from Content-Length, before the body is read.
        var noise = DataTestFiles.NoisePngBytes(1000, 1000, seed: 1); // ~3 MB, stored as is
        var big = Zip(Enumerable.Range(0, 9).Select(i => ($"c/{i}.png", noise)).ToArray());
        Assert.InRange(big.Length, 20_000_001, 40_000_000);
        var detail = await client.PostAsync("/api/v1/datasets", Form(big)).ProblemAsync(507);
        Assert.Contains("Storage:MaxDataBytes", detail);
        AssertNothingStored(host);

        // 12 MB upload fits, but its 12 MB of images do not fit beside it: refused before extraction.
        var zip = Zip(Enumerable.Range(0, 4).Select(i => ($"c/{i}.png", noise)).ToArray());
        Assert.InRange(zip.Length, 11_000_000, 14_000_000);
        detail = await client.PostAsync("/api/v1/datasets", Form(zip)).ProblemAsync(507);
        Assert.Contains("Storage:MaxDataBytes", detail);
        AssertNothingStored(host);
        Assert.DoesNotContain((await client.GetAsync("/api/v1/datasets").JsonAsync()).EnumerateArray(), d => !d.GetProperty("builtIn").GetBoolean());
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task TooLittleFreeSpace_Gets507_ForDatasetUploadsAndModelImports()
    {
        using var host = new ApiHost(); // Storage:MinFreeBytes defaults to 512 MiB
        using (var full = host.WithWebHostBuilder(b => b.ConfigureTestServices(s => s.AddSingleton<IFreeSpaceProbe>(new FixedFreeSpace(100_000_000)))))
        using (var client = full.CreateClient())
        {
            var detail = await client.PostAsync("/api/v1/datasets", Form(Zip(("a/1.png", TestImages.Png(20, 20))))).ProblemAsync(507);
            Assert.Contains("100000000 bytes free", detail);
            Assert.Contains("Storage:MinFreeBytes", detail);
            var import = new MultipartFormDataContent
            {
                { Http.Part(new byte[1000], "application/octet-stream"), "file", "model.safetensors" }, { new StringContent("backbone"), "kind" },
            };
            await client.PostAsync("/api/v1/models/import", import).ProblemAsync(507);
            AssertNothingStored(host);
        }

        // The same upload with room to spare.
        using (var roomy = host.WithWebHostBuilder(b => b.ConfigureTestServices(s => s.AddSingleton<IFreeSpaceProbe>(new FixedFreeSpace(10_000_000_000)))))
        using (var client = roomy.CreateClient())
            await client.PostAsync("/api/v1/datasets", Form(Zip(("a/1.png", TestImages.Png(20, 20))))).JsonAsync(HttpStatusCode.Created);
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task Upload_StreamsIntoItsStagingFile_InTheDataFolder_WhileItArrives()
    {
        using var host = new ApiHost();
        host.CreateClient().Dispose(); // starts the server
        // The test server's own client: the factory's default one buffers request bodies (to replay them on redirects).
        using var client = host.Server.CreateClient();
        var noise = DataTestFiles.NoisePngBytes(300, 300, seed: 1);
        var zip = Zip(Enumerable.Range(0, 4).Select(i => ($"c/{i}.png", noise)).ToArray()); // ~1 MB
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var content = new HeldMultipart(zip, half: zip.Length / 2, release.Task);

        var sending = client.PostAsync("/api/v1/datasets", content);
        // With the body half sent, the handler already writes it into data/tmp (the framework's form
        // reader would still be buffering it elsewhere, and the handler would not have started).
        var staged = await WaitForAsync(() => host.TempFiles().Select(f => new FileInfo(f)).FirstOrDefault(f => f.Exists && f.Length >= zip.Length / 4),
            TimeSpan.FromSeconds(60), sending);
        Assert.Equal(Path.Combine(host.DataDirectory, "tmp"), staged.DirectoryName);
        Assert.True(staged.Length < zip.Length, $"{staged.Length} of {zip.Length} bytes before the rest was sent");

        release.SetResult();
        var created = await (await sending).JsonAsync(HttpStatusCode.Created);
        Assert.Equal(4, created.Int("images"));
        Assert.Empty(host.TempFiles());
        host.AssertNoServerErrors();
    }

    [Theory]
    [InlineData("/api/v1/datasets")]
    [InlineData("/api/v1/models/import")]
    public async Task MalformedMultipart_Gets400(string route)
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        var part = "--AAA\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.zip\"\r\n\r\nabc\r\n";
        foreach (var (body, boundary) in new[]
                 {
                     (part + "--AAA--\r\n", "BBB"), // boundary mismatch
                     (part, "AAA"),                 // no closing boundary
                     ("\u0001\u0002 garbage", "AAA"),
                 })
        {
            var content = new ByteArrayContent(System.Text.Encoding.ASCII.GetBytes(body));
            content.Headers.ContentType = MediaTypeHeaderValue.Parse($"multipart/form-data; boundary={boundary}");
            var detail = await client.PostAsync(route, content).ProblemAsync(400);
            Assert.DoesNotContain("Exception", detail);
        }
        Assert.Empty(host.TempFiles());
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task UploadedDataset_IsDeleted_ButNotWhileAJobUsesIt_NorABuiltInOne()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        var created = await client.PostAsync("/api/v1/datasets", Form(Zip(("a/1.png", TestImages.Png(20, 20)), ("b/1.png", TestImages.Png(20, 20, 1)))))
            .JsonAsync(HttpStatusCode.Created);
        var id = created.Str("id");
        // A queued job that trains on it (planted in the job store, so no worker races the test).
        var store = host.Services.GetRequiredService<JobStore>();
        store.Create(new JobRecord { Id = "job-uses-it", Type = JobTypes.FineTune, Dataset = id, Status = JobStatus.Queued, CreatedAt = DateTimeOffset.UtcNow });

        var detail = await client.DeleteAsync($"/api/v1/datasets/{id}").ProblemAsync(409);
        Assert.Contains("job-uses-it", detail);
        Assert.True(Directory.Exists(Path.Combine(host.DataDirectory, "datasets", id)));
        store.Update("job-uses-it", j => j with { Status = JobStatus.Running });
        await client.DeleteAsync($"/api/v1/datasets/{id}").ProblemAsync(409);

        store.Update("job-uses-it", j => j with { Status = JobStatus.Failed, FinishedAt = DateTimeOffset.UtcNow });
        using (var deleted = await client.DeleteAsync($"/api/v1/datasets/{id}"))
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        await client.GetAsync($"/api/v1/datasets/{id}").ProblemAsync(404);
        await client.DeleteAsync($"/api/v1/datasets/{id}").ProblemAsync(404);
        Assert.DoesNotContain((await client.GetAsync("/api/v1/datasets").JsonAsync()).EnumerateArray(), d => d.Str("id") == id);
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(host.DataDirectory, "datasets")));

        Assert.Contains("built-in", await client.DeleteAsync("/api/v1/datasets/fashion-mnist").ProblemAsync(409));
        Assert.Contains("fashion-mnist", (await client.GetAsync("/api/v1/datasets").JsonAsync()).EnumerateArray().Select(d => d.Str("id")));
        host.AssertNoServerErrors();
    }

    // ---------------------------------------------------------------- helpers

    /// <summary>Neither the datasets folder nor the upload staging folder holds anything.</summary>
    private static void AssertNothingStored(ApiHost host)
    {
        var datasets = Path.Combine(host.DataDirectory, "datasets");
        Assert.Empty(Directory.Exists(datasets) ? Directory.GetFileSystemEntries(datasets) : []);
        Assert.Empty(host.TempFiles());
    }

    private static byte[] Zip(params (string Name, byte[] Data)[] entries) => Zip(CompressionLevel.NoCompression, entries);

    private static byte[] Zip(CompressionLevel level, params (string Name, byte[] Data)[] entries)
    {
        var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, data) in entries)
            {
                using var s = zip.CreateEntry(name, level).Open();
                s.Write(data);
            }
        return ms.ToArray();
    }

    private static MultipartFormDataContent Form(byte[] zip) =>
        new() { { Http.Part(zip, "application/zip"), "file", "set.zip" } };

    private static async Task<T> WaitForAsync<T>(Func<T?> probe, TimeSpan timeout, Task<HttpResponseMessage> request) where T : class
    {
        var until = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < until)
        {
            if (probe() is { } found) return found;
            if (request.IsCompleted) Assert.Fail($"the request ended before the condition held: {(int)(await request).StatusCode}");
            await Task.Delay(20);
        }
        Assert.Fail($"the condition did not hold within {timeout}");
        return null!;
    }

    private sealed class FixedFreeSpace(long bytes) : IFreeSpaceProbe
    {
        public long AvailableBytes(string directory) => bytes;
    }

    /// <summary>A multipart body with one 'file' part whose second half is sent only when <c>release</c> completes (length unknown: chunked).</summary>
    private sealed class HeldMultipart : HttpContent
    {
        private const string Boundary = "held-boundary";
        private readonly byte[] head, tail;
        private readonly Task release;

        public HeldMultipart(byte[] file, int half, Task release)
        {
            var preamble = System.Text.Encoding.ASCII.GetBytes(
                $"--{Boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"held.zip\"\r\nContent-Type: application/zip\r\n\r\n");
            var end = System.Text.Encoding.ASCII.GetBytes($"\r\n--{Boundary}--\r\n");
            head = [.. preamble, .. file[..half]];
            tail = [.. file[half..], .. end];
            this.release = release;
            Headers.ContentType = MediaTypeHeaderValue.Parse($"multipart/form-data; boundary={Boundary}");
        }

        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            await stream.WriteAsync(head);
            await stream.FlushAsync();
            await release;
            await stream.WriteAsync(tail);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
