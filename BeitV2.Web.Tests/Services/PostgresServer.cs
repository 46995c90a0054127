using Npgsql;

namespace BeitV2.Web.Tests.Services;

/// <summary>
/// A private PostgreSQL server from Debian's <c>postgresql</c> package (installed by <c>.ci/run</c>),
/// started in a temporary folder on a free loopback port for the test run and stopped afterwards.
/// As root (CI) the server runs as the package's <c>postgres</c> user, since PostgreSQL refuses root.
/// Nothing is skipped: when the binaries are missing or the server does not start, creating the
/// fixture throws with the reason and the tests that need it fail.
/// </summary>
public sealed class PostgresServer : IDisposable
{
    private readonly string binaries;
    private readonly string dataDirectory;
    private readonly string? runAs;

    public PostgresServer()
    {
        binaries = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "pg_ctl")))
                .OrderByDescending(d => d, StringComparer.Ordinal).FirstOrDefault() ?? ""
            : "";
        if (binaries.Length == 0)
            throw new InvalidOperationException(
                "PostgreSQL server binaries were not found under /usr/lib/postgresql/*/bin: install Debian's 'postgresql' package (.ci/run does).");
        runAs = LocalServerProcess.IsRoot ? "postgres" : null;
        // initdb creates the folder itself (as the server's user); /tmp lets any user do that.
        dataDirectory = Path.Combine("/tmp", "beitv2-pg-" + Guid.NewGuid().ToString("N")[..12]);
        Port = LocalServerProcess.FreePort();
        LocalServerProcess.Run(Path.Combine(binaries, "initdb"),
            ["-D", dataDirectory, "-U", "beitv2", "--auth=trust", "-E", "UTF8", "--no-sync"], runAs, TimeSpan.FromSeconds(120));
        try
        {
            LocalServerProcess.Run(Path.Combine(binaries, "pg_ctl"),
            [
                "-D", dataDirectory, "-l", Path.Combine(dataDirectory, "server.log"), "-w", "-t", "60",
                "-o", $"-p {Port} -k {dataDirectory} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", "start",
            ], runAs, TimeSpan.FromSeconds(90));
        }
        catch (InvalidOperationException e)
        {
            var log = Path.Combine(dataDirectory, "server.log");
            throw new InvalidOperationException($"PostgreSQL did not start: {e.Message}\n{(File.Exists(log) ? File.ReadAllText(log) : "")}", e);
        }
    }

    public int Port { get; }

    /// <summary>A connection string for <paramref name="database"/> (the maintenance database by default).</summary>
    public string ConnectionString(string database = "postgres") =>
        $"Host=127.0.0.1;Port={Port};Username=beitv2;Database={database};Pooling=true;Timeout=10";

    /// <summary>Creates a fresh database and returns its connection string.</summary>
    public string CreateDatabase()
    {
        var name = "t_" + Guid.NewGuid().ToString("N")[..16];
        using var connection = new NpgsqlConnection(ConnectionString());
        connection.Open();
        using var create = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        create.ExecuteNonQuery();
        return ConnectionString(name);
    }

    /// <summary>Restarts the server (fast shutdown: open connections are cut, as in a failover or an upgrade), with the same settings.</summary>
    public void Restart() =>
        LocalServerProcess.Run(Path.Combine(binaries, "pg_ctl"), ["-D", dataDirectory, "-l", Path.Combine(dataDirectory, "server.log"), "-m", "fast", "-w", "-t", "60", "restart"], runAs, TimeSpan.FromSeconds(90));

    public void Dispose()
    {
        NpgsqlConnection.ClearAllPools();
        try
        {
            LocalServerProcess.Run(Path.Combine(binaries, "pg_ctl"), ["-D", dataDirectory, "-m", "immediate", "-w", "stop"], runAs);
        }
        catch (InvalidOperationException) { }
        try { Directory.Delete(dataDirectory, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
