namespace BeitV2.Web.Registry;

/// <summary>
/// Where the registry keeps what is not in a model's package: the default model of each kind, and a counter that every
/// change (a model added, deleted or re-described, a default changed) moves, so servers sharing the models see each
/// other's changes. <see cref="FileRegistryState"/> for the embedded single server; <see cref="PostgresRegistryState"/>
/// when several servers share PostgreSQL.
/// </summary>
public interface IRegistryState
{
    /// <summary>The default model id of each kind.</summary>
    Dictionary<string, string> ReadDefaults();

    /// <summary>Makes <paramref name="modelId"/> the default <paramref name="kind"/> (the last write wins).</summary>
    void SetDefault(string kind, string modelId);

    /// <summary>Makes <paramref name="modelId"/> the default <paramref name="kind"/> unless that kind has one; true when it did.</summary>
    bool SetDefaultIfNone(string kind, string modelId);

    /// <summary>Seeds the defaults from <paramref name="defaults"/> when there are none at all (a fresh deployment).</summary>
    void SeedDefaults(IReadOnlyDictionary<string, string> defaults);

    /// <summary>Moves the change counter: other servers read the models and defaults again.</summary>
    void Changed();

    /// <summary>The change counter as stored now (null when this state has none: the embedded mode watches the folder instead).</summary>
    long? Version();
}
