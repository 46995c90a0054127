using System.Net;
using BeitV2.Web.Hosting;
using BeitV2.Web.Tests.Api;
using Xunit.Abstractions;

namespace BeitV2.Web.Tests.Services;

/// <summary>
/// The embedded SQLite job storage serves one server: a second server on the same data folder refuses to start, told
/// by the lock (same host) or by the liveness file a live server keeps rewriting (another host), and says to use
/// PostgreSQL; the first keeps serving. A stale liveness file (a crash) does not block a start, and a clean stop
/// removes it, so a restart does not even look at it.
/// </summary>
public sealed class SingleServerGuardTests(ITestOutputHelper output)
{
    // Failure guards only: a start takes seconds; nothing here depends on how fast.
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    /// <summary>What the guard logs when it finds a liveness file and watches it.</summary>
    private const string Watching = "Watching it for";

    [Fact]
    public async Task SecondServerOnTheSameDataFolder_RefusesToStart_TheFirstKeepsServing_AndACleanStopFreesTheFolder()
    {
        using var data = new TempDirectory();
        using var first = new AppProcess("first", Settings(data.Path));
        AppProcess? second = null;
        try
        {
            await first.WaitUntilLiveAsync(Timeout);
            Assert.True(File.Exists(Alive(data.Path)), "the live server writes no liveness file");

            second = new AppProcess("second", Settings(data.Path));
            var code = await second.WaitForExitAsync(Timeout);
            Assert.Equal(DataFolderGuards.RefusedExitCode, code);
            Assert.Contains("Refusing to start", second.Output);
            Assert.Contains("in use by a live server on this machine", second.Output);
            Assert.Contains($"process {first.ProcessId} on host", second.Output);
            Assert.Contains("Jobs:Storage=postgres", second.Output);
            Assert.DoesNotContain("Now listening", second.Output);
            Assert.DoesNotContain("   at ", second.Output); // no stack trace

            // The first server noticed nothing: it answers, and its liveness file is still its own.
            using (var live = await first.Client.GetAsync("/health/live")) Assert.Equal(HttpStatusCode.OK, live.StatusCode);
            using (var models = await first.Client.GetAsync("/api/v1/models")) Assert.Equal(HttpStatusCode.OK, models.StatusCode);
            Assert.Contains($"pid={first.ProcessId} ", await File.ReadAllTextAsync(Alive(data.Path)));

            // A clean stop (SIGTERM) deletes the liveness file, so the next server starts without watching it.
            Assert.Equal(0, await first.StopAsync(Timeout));
            Assert.False(File.Exists(Alive(data.Path)), "a clean stop left the liveness file");
            using var third = new AppProcess("third", Settings(data.Path));
            await third.WaitUntilLiveAsync(Timeout);
            Assert.DoesNotContain(Watching, third.Output);
            output.WriteLine(third.Output);
        }
        catch
        {
            output.WriteLine($"--- first:\n{first.Output}\n--- second:\n{second?.Output}");
            throw;
        }
        finally
        {
            second?.Dispose();
        }
    }

    [Fact]
    public async Task ALiveServerOnAnotherHost_IsToldByItsLivenessFile()
    {
        // flock excludes nothing between hosts on NFS mounted nolock: what remains is the file the live server keeps
        // rewriting. Here a loop plays that server (no lock held), rewriting the file as often as a live one does.
        using var data = new TempDirectory();
        Directory.CreateDirectory(Path.Combine(data.Path, "jobs"));
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(async () =>
        {
            for (var counter = 1; !stop.IsCancellationRequested; counter++)
            {
                var temp = Alive(data.Path) + ".tmp-" + Guid.NewGuid().ToString("N");
                await File.WriteAllTextAsync(temp, $"owner=elsewhere counter={counter} pid=4242 host=other-host\n");
                File.Move(temp, Alive(data.Path), overwrite: true);
                try { await Task.Delay(SingleServerGuard.Beat, stop.Token); }
                catch (OperationCanceledException) { }
            }
        });
        using var app = new AppProcess("other host's folder", Settings(data.Path));
        try
        {
            var code = await app.WaitForExitAsync(Timeout);
            output.WriteLine(app.Output);
            Assert.Equal(DataFolderGuards.RefusedExitCode, code);
            Assert.Contains("in use by a live server on another host (process 4242 on host other-host)", app.Output);
            Assert.Contains("Jobs:Storage=postgres", app.Output);
            Assert.DoesNotContain("Now listening", app.Output);
        }
        finally
        {
            await stop.CancelAsync();
            await writer;
        }
    }

    [Fact]
    public async Task StaleLivenessFile_DoesNotBlockAStart()
    {
        // What a crashed server leaves: the file, no lock (the kernel released it with the process).
        using var data = new TempDirectory();
        Directory.CreateDirectory(Path.Combine(data.Path, "jobs"));
        const string stale = "owner=crashed counter=77 pid=4242 host=gone\n";
        await File.WriteAllTextAsync(Alive(data.Path), stale);

        using var host = new ApiHost(new Dictionary<string, string?> { ["Storage:DataDirectory"] = data.Path });
        using var client = host.CreateClient();
        using (var live = await client.GetAsync("/health/live")) Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Contains(host.WarningLogs, w => w.Contains(Watching) && w.Contains("process 4242 on host gone"));
        // This server writes the file now.
        Assert.Contains($"pid={Environment.ProcessId} ", await File.ReadAllTextAsync(Alive(data.Path)));
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task RestartAfterACleanStop_StartsWithoutWatching()
    {
        // Tests (and restarts) stop a host and start another on the same data folder in one process.
        using var data = new TempDirectory();
        var settings = new Dictionary<string, string?> { ["Storage:DataDirectory"] = data.Path };
        using (var first = new ApiHost(settings))
        using (var client = first.CreateClient())
        {
            using var live = await client.GetAsync("/health/live");
            Assert.Equal(HttpStatusCode.OK, live.StatusCode);
            Assert.True(File.Exists(Alive(data.Path)));
        }
        // The first host may still be finishing its disposal on its entry point's thread: the second one waits for it to
        // let go of the lock, and by then its liveness file is gone, so there is nothing to watch.
        using var second = new ApiHost(settings);
        using var again = second.CreateClient();
        using (var live = await again.GetAsync("/health/live")) Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.DoesNotContain(second.WarningLogs, w => w.Contains(Watching));
        second.AssertNoServerErrors();
    }

    [Fact]
    public async Task AHostStartingInTheSameProcess_WaitsForTheEarlierOneToStop()
    {
        // In one process (WebApplicationFactory) the lock is the process's own: a second host on the folder waits for the
        // first to let go instead of refusing, since the first may be finishing its disposal on another thread.
        using var data = new TempDirectory();
        var settings = new Dictionary<string, string?> { ["Storage:DataDirectory"] = data.Path };
        var first = new ApiHost(settings);
        using var second = new ApiHost(settings);
        try
        {
            using (var client = first.CreateClient())
            using (var live = await client.GetAsync("/health/live"))
                Assert.Equal(HttpStatusCode.OK, live.StatusCode);
            var starting = Task.Run(second.CreateClient);
            await Task.Delay(TimeSpan.FromSeconds(1));
            Assert.False(starting.IsCompleted, "the second host started (or gave up) while the first held the data folder");
            first.Dispose();
            using var again = await starting.WaitAsync(Timeout);
            using (var live = await again.GetAsync("/health/live")) Assert.Equal(HttpStatusCode.OK, live.StatusCode);
            Assert.DoesNotContain(second.WarningLogs, w => w.Contains(Watching));
            second.AssertNoServerErrors();
        }
        finally
        {
            first.Dispose();
        }
    }

    private static string Alive(string data) => Path.Combine(data, "jobs", SingleServerGuard.AliveFile);

    internal static Dictionary<string, string> Settings(string data, params (string Key, string Value)[] more) => AppProcess.BareSettings(data, more);
}
