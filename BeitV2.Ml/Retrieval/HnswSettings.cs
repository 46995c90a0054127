namespace BeitV2.Ml.Retrieval;

/// <summary>
/// The HNSW graph's parameters. The defaults are chosen for recall@10 ≥ 0.95 against exact search on the hardest data
/// this project meets (uniformly random 768-d vectors, where neighbours are barely closer than strangers) while keeping
/// a search under a few milliseconds; the bench verb <c>vectors</c> prints recall and latency for them.
/// </summary>
/// <param name="Connectivity">
/// Neighbours kept per node (HNSW's M; the base layer keeps 2M). 32 rather than USearch's 16: on 20,000 random 64-d
/// vectors M = 16 reached recall@10 0.89 at ef 128 and needed ef 256 (twice the search time) for 0.97, while M = 32 gave
/// 0.975 at ef 128 in the same search and build time. The cost is memory: 2M × 4 bytes = 256 bytes a vector at the
/// base layer, beside 3 KB for a 768-d float32 vector (768 bytes for int8).
/// </param>
/// <param name="ExpansionAdd">
/// Candidates examined when linking a new vector (efConstruction). 128 is USearch's default: a better-connected graph
/// than 64 at about twice the build time of 64; past ~200 the build slows with no measurable recall gain at M = 16.
/// </param>
/// <param name="ExpansionSearch">
/// Candidates examined per query (ef), also settable on an open index (<see cref="HnswVectorIndex.ExpansionSearch"/>).
/// 128 instead of USearch's 64: at M = 32, ef 64 gave recall@10 0.88 on random 64-d data, ef 128 0.975, ef 256 0.998 at
/// about twice the time; search time grows roughly linearly with it.
/// </param>
public sealed record HnswSettings(int Connectivity = 32, int ExpansionAdd = 128, int ExpansionSearch = 128)
{
    /// <summary>The documented defaults.</summary>
    public static HnswSettings Default { get; } = new();
}
