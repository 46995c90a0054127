using System.Text.Json;
using System.Text.RegularExpressions;
using BeitV2.Ml.Checkpoints;
using BeitV2.Web.Configuration;
using BeitV2.Web.Errors;
using BeitV2.Web.Infrastructure;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using static TorchSharp.torch;

namespace BeitV2.Web.Registry;

/// <summary>
/// The models on disk, under <c>{DataDirectory}/models/{id}/</c>, each a <see cref="ModelPackage"/>
/// folder whose manifest metadata also carries the registry fields (name, source, lineage), so a
/// model is written in one atomic rename. The default model per kind is in <see cref="IRegistryState"/>:
/// <c>defaults.json</c> for the embedded single server, a PostgreSQL table when several servers share the models.
/// </summary>
/// <remarks>
/// The models and defaults are read once and kept until <see cref="GetChangeToken"/>'s token fires: at once
/// when this server imports, deletes or changes a default, and when another server sharing the folder
/// changed it (<see cref="ModelsFolderChangeToken"/>: one <c>stat</c> per lookup, not a listing; with PostgreSQL also the
/// state's change counter, polled by <see cref="RegistryChangeWatcher"/>, since NFS caches a folder's times).
/// </remarks>
public sealed partial class ModelRegistry
{
    private const string DefaultsFile = FileRegistryState.DefaultsFile;
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };
    private readonly IRegistryState state;
    private readonly Lock gate = new();
    private readonly ILogger<ModelRegistry> logger;
    private Snapshot? cache;
    private CancellationTokenSource changes = new();

    /// <summary>The models and defaults as read, and the token that says when they are stale.</summary>
    private sealed record Snapshot(Dictionary<string, ModelInfo> Models, Dictionary<string, string> Defaults, IChangeToken Token);

    public ModelRegistry(DataDirectory data, IOptions<ModelsOptions> options, ILogger<ModelRegistry> logger, IRegistryState? state = null)
    {
        this.logger = logger;
        ModelsDirectory = data.Sub("models");
        this.state = state ?? new FileRegistryState(ModelsDirectory, logger);
        if (options.Value.SeedDefaults)
            SeedBundled(options.Value.Bundle);
        // A deployment moving from one server to several: the defaults it had in defaults.json seed the shared table.
        if (this.state is not FileRegistryState && File.Exists(Path.Combine(ModelsDirectory, DefaultsFile)))
            this.state.SeedDefaults(new FileRegistryState(ModelsDirectory, logger).ReadDefaults());
    }

    /// <summary>
    /// Copies the bundled default models into an empty registry (a fresh data directory), so a fresh clone
    /// serves them at once. A registry that holds any model is left alone: deleting a default is respected.
    /// Each package is copied into a staging folder and renamed into place, so a crash (or a second server
    /// seeding the same shared folder) never leaves half a model.
    /// </summary>
    private void SeedBundled(string bundle)
    {
        if (!File.Exists(Path.Combine(bundle, DefaultsFile))) return;
        Directory.CreateDirectory(ModelsDirectory);
        if (Directory.EnumerateDirectories(ModelsDirectory).Any(d => !Path.GetFileName(d).StartsWith('.'))) return;
        var copied = 0;
        foreach (var source in Directory.EnumerateDirectories(bundle))
        {
            var id = Path.GetFileName(source);
            if (!IsValidId(id) || !File.Exists(Path.Combine(source, "manifest.json"))) continue;
            var target = PackageDirectory(id);
            if (Directory.Exists(target)) continue;
            var staging = Path.Combine(ModelsDirectory, $".seed-{id}-{Guid.NewGuid():N}");
            Directory.CreateDirectory(staging);
            foreach (var file in Directory.GetFiles(source)) File.Copy(file, Path.Combine(staging, Path.GetFileName(file)));
            try
            {
                Directory.Move(staging, target);
                copied++;
            }
            catch (IOException)
            {
                Directory.Delete(staging, recursive: true); // another server seeded it meanwhile
            }
        }
        state.SeedDefaults(new FileRegistryState(bundle, logger).ReadDefaults());
        if (copied > 0) logger.LogInformation("Seeded {Count} bundled default model(s) from {Bundle}", copied, bundle);
    }

    /// <summary>
    /// Fires when the registered models or defaults change: actively when this server imports, deletes or
    /// changes a default; on lookup (<see cref="IChangeToken.HasChanged"/>) when another server changed the folder.
    /// </summary>
    public IChangeToken GetChangeToken()
    {
        lock (gate) return Load().Token;
    }

    // Called under the lock (or before the registry is shared) after every write.
    private void Changed()
    {
        Invalidate();
        state.Changed();
    }

    private void Invalidate()
    {
        var fired = changes;
        changes = new CancellationTokenSource();
        cache = null;
        fired.Cancel();
    }

    /// <summary>
    /// Another server changed the models or defaults (<see cref="RegistryChangeWatcher"/> saw the state's counter move):
    /// read them again, and drop loaded copies of the models that are gone.
    /// </summary>
    public void Reload()
    {
        lock (gate)
        {
            Invalidate();
            Load();
        }
    }

    /// <summary>The ids of the last listing: a model missing from the next one was deleted (here or on another server).</summary>
    private HashSet<string> known = new(StringComparer.Ordinal);

    public string ModelsDirectory { get; }

    /// <summary>Raised after a model was deleted or replaced, so loaded copies can be dropped.</summary>
    public event Action<string>? ModelChanged;

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,63}$")]
    private static partial Regex IdPattern();

    public static bool IsValidId(string id) => IdPattern().IsMatch(id) && !id.Contains("..");

    public IReadOnlyList<ModelInfo> List()
    {
        lock (gate) return Load().Models.Values.OrderBy(m => m.CreatedAt).ToList();
    }

    /// <summary>The model with this id; the bundled models' former ids (<see cref="ModelIds.Renamed"/>) find them under their new ones.</summary>
    public ModelInfo? Find(string id)
    {
        if (!IsValidId(id)) return null;
        lock (gate)
        {
            var models = Load().Models;
            return models.GetValueOrDefault(id)
                ?? (ModelIds.Renamed.TryGetValue(id, out var renamed) ? models.GetValueOrDefault(renamed) : null);
        }
    }

    public ModelInfo Get(string id) =>
        Find(id) ?? throw new NotFoundException($"No model with id '{id}'. GET /api/v1/models lists the registered models.");

    /// <summary>The model registered as output <paramref name="output"/> of job <paramref name="jobId"/>, if any.</summary>
    public ModelInfo? FindOutput(string jobId, string output)
    {
        lock (gate) return Load().Models.Values.FirstOrDefault(m => m.Lineage?.JobId == jobId && m.Lineage.Output == output);
    }

    public string PackageDirectory(string id) => Path.Combine(ModelsDirectory, id);

    public string? DefaultId(string kind)
    {
        lock (gate)
        {
            var snapshot = Load();
            return snapshot.Defaults.GetValueOrDefault(kind) is { } id && snapshot.Models.ContainsKey(id) ? id : null;
        }
    }

    public IReadOnlyDictionary<string, string> Defaults()
    {
        lock (gate)
        {
            var snapshot = Load();
            return snapshot.Defaults.Where(kv => snapshot.Models.ContainsKey(kv.Value)).ToDictionary();
        }
    }

    public IReadOnlyList<string>? Labels(string id) => ModelPackage.ReadManifest(PackageDirectory(Get(id).Id)).Labels;

    /// <summary>
    /// Saves <paramref name="model"/> as a new registered model. The first model of a kind becomes its
    /// default unless <paramref name="makeDefault"/> says otherwise.
    /// </summary>
    /// <param name="dataset">The dataset it was trained on, if any: it names the model's id (<see cref="ModelIds"/>).</param>
    public ModelInfo Add(nn.Module model, string name, string source, IReadOnlyList<string>? labels = null,
        ModelLineage? lineage = null, bool? makeDefault = null, string? dataset = null, ModelDomain? domain = null)
    {
        // A job's output is registered once: a run restarted after dying between registering and recording
        // the model gets the model its predecessor saved.
        if (lineage is { JobId: { } job, Output: { } output } && FindOutput(job, output) is { } existing)
        {
            logger.LogInformation("Model {Id} is already the output {Output} of job {Job}; not registered again", existing.Id, output, job);
            return existing;
        }
        var id = ModelIds.New(ApiKindOf(model), dataset, name, taken => Directory.Exists(PackageDirectory(taken)));
        var createdAt = DateTimeOffset.UtcNow;
        var metadata = new Dictionary<string, string>
        {
            ["name"] = name,
            ["source"] = source,
            ["createdAt"] = createdAt.ToString("O"),
        };
        if (lineage is not null) metadata["lineage"] = JsonSerializer.Serialize(lineage, Json);
        ModelPackage.Save(model, PackageDirectory(id), labels, metadata, domain: domain);
        lock (gate)
        {
            Changed();
            var info = Load().Models[id];
            // The state, not the snapshot: another server may have set a default meanwhile.
            var madeDefault = makeDefault switch
            {
                true => Do(() => state.SetDefault(info.Kind, id)),
                null => state.SetDefaultIfNone(info.Kind, id),
                false => false,
            };
            if (madeDefault) Changed();
            logger.LogInformation("Registered model {Id} ({Kind}, {Architecture}) from {Source}", id, info.Kind, info.Architecture, source);
            return Load().Models[id];
        }
    }

    /// <summary>
    /// Sets a model's domain, and its out-of-domain fit when given (<see cref="ModelPackage.WriteDomain"/>: the weights are not
    /// touched). A loaded copy is dropped, so the next request serves with the new fit.
    /// </summary>
    /// <returns>the domain as written.</returns>
    public ModelDomain UpdateDomain(string id, ModelDomain domain, BeitV2.Ml.Domain.DomainFit? fit = null)
    {
        ModelDomain written;
        lock (gate)
        {
            id = Get(id).Id;   // a former id (ModelIds.Renamed) names the model by its folder's id from here on
            written = ModelPackage.WriteDomain(PackageDirectory(id), domain, fit).DomainOrUnknown;
            Changed();
        }
        ModelChanged?.Invoke(id);
        return written;
    }

    public void SetDefault(string id)
    {
        lock (gate)
        {
            var info = Get(id);
            state.SetDefault(info.Kind, info.Id);   // never a former id: defaults name folders
            Invalidate();
        }
    }

    /// <summary>Deletes a model; the default model of a kind cannot be deleted (409).</summary>
    public void Delete(string id)
    {
        lock (gate)
        {
            var info = Get(id);
            // The state, not the snapshot: another server may have made it the default a moment ago.
            if (info.IsDefault || state.ReadDefaults().GetValueOrDefault(info.Kind) == info.Id)
                throw new ConflictException($"'{id}' is the default {info.Kind}; make another model the default first.");
            id = info.Id;   // a former id (ModelIds.Renamed) names the model by its folder's id from here on
            // Rename first (atomic), then delete: a crash leaves a hidden folder, never half a model.
            var trash = Path.Combine(ModelsDirectory, $".deleted-{id}-{Guid.NewGuid():N}");
            Directory.Move(PackageDirectory(id), trash);
            Changed();
            try { Directory.Delete(trash, recursive: true); }
            catch (IOException e) { logger.LogWarning(e, "Could not remove {Trash}", trash); }
        }
        ModelChanged?.Invoke(id);
    }

    private static string ApiKindOf(nn.Module model)
    {
        var (entry, config) = Ml.Catalog.ModelCatalog.Default.Describe(model);
        return ApiModelKinds.Of(entry.Kind, entry.Describe(config));
    }

    // Under the lock. The token is taken before the folder is read, so a change made while reading fires it.
    private Snapshot Load()
    {
        if (cache is { } cached && !cached.Token.HasChanged) return cached;
        IChangeToken token;
        List<string> folders;
        try
        {
            Directory.CreateDirectory(ModelsDirectory);
            token = new CompositeChangeToken([new CancellationChangeToken(changes.Token), new ModelsFolderChangeToken(ModelsDirectory)]);
            folders = Directory.EnumerateDirectories(ModelsDirectory).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The data directory is gone or unreadable (the readiness check says so): no models, asked again next time.
            logger.LogWarning("Cannot read the models folder: {Message}", e.Message);
            return new Snapshot(new Dictionary<string, ModelInfo>(), new Dictionary<string, string>(), new CancellationChangeToken(new CancellationToken(true)));
        }
        var defaults = state.ReadDefaults();
        var result = new Dictionary<string, ModelInfo>(StringComparer.Ordinal);
        foreach (var dir in folders)
        {
            var id = Path.GetFileName(dir);
            if (id.StartsWith('.') || !IsValidId(id)) continue;
            try
            {
                var manifest = ModelPackage.ReadManifest(dir);
                var shape = ModelDescription.Describe(manifest.Kind, manifest.Config);
                var meta = manifest.Metadata ?? new Dictionary<string, string>();
                var lineage = meta.TryGetValue("lineage", out var l) ? JsonSerializer.Deserialize<ModelLineage>(l, Json) : null;
                result[id] = new ModelInfo(id, meta.GetValueOrDefault("name") ?? id, shape.Kind, shape.Architecture, shape.ImageSize,
                    shape.PatchSize, shape.EmbedDim, shape.Depth, shape.CodebookSize, shape.Classes,
                    meta.GetValueOrDefault("source") ?? "unknown",
                    meta.TryGetValue("createdAt", out var c) && DateTimeOffset.TryParse(c, out var at) ? at : manifest.CreatedUtc,
                    defaults.GetValueOrDefault(shape.Kind) == id, manifest.Labels is { Count: > 0 }, lineage, manifest.DomainOrUnknown)
                {
                    ShortName = ModelNames.Short(meta.GetValueOrDefault("name") ?? id, meta.GetValueOrDefault("shortName")),
                };
            }
            catch (Exception e) when (e is CheckpointException or InvalidDataException or JsonException or IOException)
            {
                logger.LogWarning("Skipping {Dir}: {Message}", dir, e.Message);
            }
        }
        // Whichever read notices a model gone (the change watcher, or a request after the folder changed), loaded copies are
        // dropped: raised off this lock, since handlers take their own.
        foreach (var id in known.Where(id => !result.ContainsKey(id)))
        {
            logger.LogInformation("Model {Id} is no longer registered; dropping loaded copies", id);
            ThreadPool.QueueUserWorkItem(gone => ModelChanged?.Invoke(gone), id, preferLocal: false);
        }
        known = [.. result.Keys];
        return cache = new Snapshot(result, defaults, token);
    }

    private static bool Do(Action action)
    {
        action();
        return true;
    }
}
