using System.Text.Json;
using BeitV2.Web.Infrastructure;

namespace BeitV2.Web.Registry;

/// <summary>
/// The embedded registry state: <c>{models}/defaults.json</c>, replaced atomically, read-modify-written under the
/// registry's in-process lock. Good for one server; several servers keep the defaults in PostgreSQL
/// (<see cref="PostgresRegistryState"/>), since nothing here excludes a writer on another host.
/// </summary>
public sealed class FileRegistryState(string modelsDirectory, ILogger logger) : IRegistryState
{
    public const string DefaultsFile = "defaults.json";
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };
    private readonly Lock gate = new();

    private string Path => System.IO.Path.Combine(modelsDirectory, DefaultsFile);

    public Dictionary<string, string> ReadDefaults()
    {
        if (!File.Exists(Path)) return new Dictionary<string, string>();
        try
        {
            return JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(Path), Json) ?? new();
        }
        catch (JsonException e)
        {
            logger.LogWarning("Ignoring unreadable {File}: {Message}", DefaultsFile, e.Message);
            return new Dictionary<string, string>();
        }
    }

    public void SetDefault(string kind, string modelId)
    {
        lock (gate)
        {
            var defaults = ReadDefaults();
            defaults[kind] = modelId;
            Write(defaults);
        }
    }

    public bool SetDefaultIfNone(string kind, string modelId)
    {
        lock (gate)
        {
            var defaults = ReadDefaults();
            if (defaults.ContainsKey(kind)) return false;
            defaults[kind] = modelId;
            Write(defaults);
            return true;
        }
    }

    public void SeedDefaults(IReadOnlyDictionary<string, string> defaults)
    {
        lock (gate)
            if (!File.Exists(Path)) Write(new Dictionary<string, string>(defaults));
    }

    public void Changed() { } // the folder's own change (a rename in it) is the signal: ModelsFolderChangeToken

    public long? Version() => null;

    private void Write(Dictionary<string, string> defaults)
    {
        Directory.CreateDirectory(modelsDirectory);
        AtomicFile.WriteAllText(Path, JsonSerializer.Serialize(defaults, Json));
    }
}
