using Microsoft.AspNetCore.SignalR;
using StackExchange.Redis;

namespace BeitV2.Web.Jobs;

/// <summary>
/// <c>SignalR:Redis</c>: the Redis backplane, so a browser connected to any server receives the
/// progress of a job running on another one. Unset = in-process only (one server).
/// </summary>
public static class SignalRScaleOut
{
    public const string ConfigKey = "SignalR:Redis";

    public static ISignalRServerBuilder AddTrainingHubBackplane(this ISignalRServerBuilder signalR, IConfiguration configuration)
    {
        if (configuration[ConfigKey] is not { Length: > 0 } redis) return signalR;
        ConfigurationOptions options;
        try
        {
            options = ConfigurationOptions.Parse(redis);
        }
        catch (ArgumentException e)
        {
            throw new InvalidOperationException($"{ConfigKey} is not a valid Redis configuration string: {e.Message}", e);
        }
        options.AbortOnConnectFail = true;
        options.ConnectTimeout = Math.Min(options.ConnectTimeout, 5000);
        options.ClientName ??= "beitv2";
        // One channel prefix per deployment, so several deployments can share a Redis server.
        var prefix = configuration["SignalR:ChannelPrefix"] is { Length: > 0 } p ? p : "beitv2";
        return signalR.AddStackExchangeRedis(o =>
        {
            o.Configuration = options;
            o.Configuration.ChannelPrefix = RedisChannel.Literal(prefix);
            o.ConnectionFactory = async writer =>
            {
                try
                {
                    return await ConnectionMultiplexer.ConnectAsync(o.Configuration, writer);
                }
                catch (RedisConnectionException e)
                {
                    throw new InvalidOperationException(
                        $"{ConfigKey}: cannot reach Redis at {string.Join(", ", o.Configuration.EndPoints)} ({e.Message}). " +
                        "Check the setting and that Redis is running, or remove it for a single server.", e);
                }
            };
        });
    }
}
