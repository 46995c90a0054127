using System.Net;
using BeitV2.Web.Hosting;
using BeitV2.Web.Jobs;
using BeitV2.Web.Tests.Services;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Xunit.Abstractions;

namespace BeitV2.Web.Tests.Jobs;

/// <summary>
/// With PostgreSQL job storage every server must use one data volume: the data folder's <c>.volume-id</c> is recorded in
/// the job database by the first server, and a server on another folder refuses to start, saying to mount the same
/// volume. Servers starting at once agree on one id. A data folder the server cannot write is refused with a clear
/// message, in either storage mode.
/// </summary>
public sealed class SharedVolumeCheckTests(PostgresServer postgres, ITestOutputHelper output) : IClassFixture<PostgresServer>
{
    // Failure guards only: nothing here depends on how fast a server starts.
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task TwoDataFoldersAgainstOneDatabase_TheSecondServerRefusesToStart()
    {
        var database = postgres.CreateDatabase();
        using var shared = new TempDirectory();
        using var other = new TempDirectory();
        using var first = new AppProcess("first", Settings(shared.Path, database));
        AppProcess? second = null;
        try
        {
            await first.WaitUntilLiveAsync(Timeout);
            var volume = (await File.ReadAllTextAsync(Path.Combine(shared.Path, SharedVolumeCheck.VolumeIdFile))).Trim();
            Assert.Equal(volume, await RecordedAsync(database, "beitv2"));

            second = new AppProcess("second", Settings(other.Path, database));
            var code = await second.WaitForExitAsync(Timeout);
            Assert.Equal(DataFolderGuards.RefusedExitCode, code);
            Assert.Contains("Refusing to start", second.Output);
            Assert.Contains($"the data folder {other.Path} (Storage:DataDirectory) is not the shared volume the other servers use", second.Output);
            Assert.Contains("Mount the same volume at Storage:DataDirectory on every server", second.Output);
            Assert.Contains(volume, second.Output);
            Assert.DoesNotContain("Now listening", second.Output);
            Assert.DoesNotContain("   at ", second.Output);

            // The first server keeps serving, and the record still names its volume.
            using (var models = await first.Client.GetAsync("/api/v1/models")) Assert.Equal(HttpStatusCode.OK, models.StatusCode);
            Assert.Equal(volume, await RecordedAsync(database, "beitv2"));
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
    public async Task ServersStartingAtOnce_AgreeOnOneVolumeId()
    {
        // compose starts its app servers together on a fresh volume and database: each may create the id file and the
        // table at the same moment. One id wins, in the file and in the database, and every server accepts it.
        var database = postgres.CreateDatabase();
        using var data = new TempDirectory();
        var jobs = new JobsOptions { Storage = "postgres", ConnectionString = database, StateSchema = "state_at_once" };
        using var gate = new Barrier(8);
        var reasons = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Factory.StartNew(() =>
        {
            gate.SignalAndWait();
            return SharedVolumeCheck.Check(data.Path, jobs, NullLogger.Instance);
        }, TaskCreationOptions.LongRunning)));
        Assert.All(reasons, Assert.Null);
        var volume = (await File.ReadAllTextAsync(Path.Combine(data.Path, SharedVolumeCheck.VolumeIdFile))).Trim();
        Assert.Matches("^[0-9a-f]{32}$", volume);
        Assert.Equal(volume, await RecordedAsync(database, "state_at_once"));
        Assert.Equal(new[] { SharedVolumeCheck.VolumeIdFile }, Directory.GetFileSystemEntries(data.Path).Select(p => Path.GetFileName(p)).ToArray()); // nothing else left
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")] // the server runs on Linux only (file modes, setpriv)
    public async Task ReadOnlyDataFolder_RefusesToStart_WithAClearMessage(string storage)
    {
        using var data = new TempDirectory();
        var settings = storage == "postgres" ? Settings(data.Path, postgres.CreateDatabase()) : SingleServerGuardTests.Settings(data.Path);
        File.SetUnixFileMode(data.Path, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute |
                                        UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        try
        {
            // root writes anywhere: run the server as root without the capability that overrides file modes.
            string[]? launcher = LocalServerProcess.IsRoot
                ? ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"]
                : null;
            using var app = new AppProcess($"read-only, {storage}", settings, launcher: launcher);
            var code = await app.WaitForExitAsync(Timeout);
            output.WriteLine(app.Output);
            Assert.Equal(DataFolderGuards.RefusedExitCode, code);
            Assert.Contains($"Refusing to start: the data folder {data.Path} (Storage:DataDirectory) is not writable", app.Output);
            Assert.Contains("permission denied", app.Output);
            Assert.Contains("make the folder writable for the server's user, or set Storage:DataDirectory to a writable volume", app.Output);
            Assert.DoesNotContain("   at ", app.Output);
            Assert.Empty(Directory.GetFileSystemEntries(data.Path));
        }
        finally
        {
            File.SetUnixFileMode(data.Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    private static async Task<string?> RecordedAsync(string database, string schema)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var select = new NpgsqlCommand($"SELECT volume_id FROM \"{schema}\".{SharedVolumeCheck.Table}", connection);
        return (string?)await select.ExecuteScalarAsync();
    }

    private static Dictionary<string, string> Settings(string data, string database) =>
        SingleServerGuardTests.Settings(data, ("Jobs:Storage", "postgres"), ("Jobs:ConnectionString", database));
}
