namespace BeitV2.Web.Registry;

/// <summary>
/// With several servers (PostgreSQL), polls the registry state's change counter and reloads the registry when another
/// server moved it: a default changed there is served here within a poll, and a model deleted there is unloaded here.
/// A query of one row every <see cref="Interval"/>; a database that is down is retried at the next poll.
/// </summary>
public sealed class RegistryChangeWatcher(ModelRegistry registry, IRegistryState state, ILogger<RegistryChangeWatcher> logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        long? seen = null;
        using var timer = new PeriodicTimer(Interval);
        var failing = false;
        do
        {
            try
            {
                var version = await Task.Run(state.Version, stoppingToken);
                if (seen is not null && version != seen) registry.Reload();
                seen = version;
                if (failing) logger.LogInformation("The registry's change counter is readable again");
                failing = false;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (!failing)
            {
                failing = true;
                logger.LogWarning("Cannot read the registry's change counter ({Message}); other servers' changes are seen when it is back", e.Message);
            }
            catch (Exception)
            {
                // Logged once above; keep polling.
            }
        } while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }
}
