using System.Runtime.InteropServices;

namespace BeitV2.Ml.Retrieval;

/// <summary>
/// The C API of USearch (libusearch_c, shipped for linux-x64, win-x64 and osx-arm64 by the Cloud.Unum.USearch package),
/// called directly: the package's managed wrapper copies every vector into a fresh array, queries size and capacity
/// on each add, and cannot set the search expansion of an index it loads, so <see cref="HnswVectorIndex"/> talks to the
/// library itself. Every function reports failure through <c>error</c> (a static C string; never freed).
/// </summary>
internal static unsafe partial class USearchNative
{
    private const string Library = "libusearch_c";

    /// <summary><c>usearch_metric_kind_t</c>.</summary>
    public const int MetricCos = 1;
    /// <summary><c>usearch_scalar_kind_t</c> values of this build (the package's ScalarKind enum has the same).</summary>
    public const int ScalarF32 = 1, ScalarI8 = 4;

    /// <summary><c>usearch_init_options_t</c> (64 bytes on 64-bit targets).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct InitOptions
    {
        public int MetricKind;
        public nint Metric;
        public int Quantization;
        public nuint Dimensions;
        public nuint Connectivity;
        public nuint ExpansionAdd;
        public nuint ExpansionSearch;
        public byte Multi;   // C bool
    }

    [LibraryImport(Library, EntryPoint = "usearch_version")] public static partial nint Version();
    [LibraryImport(Library, EntryPoint = "usearch_hardware_acceleration_available")] public static partial nint HardwareAvailable();
    [LibraryImport(Library, EntryPoint = "usearch_hardware_acceleration")] public static partial nint HardwareUsed(nint index, out nint error);
    [LibraryImport(Library, EntryPoint = "usearch_init")] public static partial nint Init(InitOptions* options, out nint error);
    [LibraryImport(Library, EntryPoint = "usearch_free")] public static partial void Free(nint index, out nint error);
    [LibraryImport(Library, EntryPoint = "usearch_save", StringMarshalling = StringMarshalling.Utf8)] public static partial void Save(nint index, string path, out nint error);
    [LibraryImport(Library, EntryPoint = "usearch_load", StringMarshalling = StringMarshalling.Utf8)] public static partial void Load(nint index, string path, out nint error);
    [LibraryImport(Library, EntryPoint = "usearch_view", StringMarshalling = StringMarshalling.Utf8)] public static partial void View(nint index, string path, out nint error);
    [LibraryImport(Library, EntryPoint = "usearch_metadata", StringMarshalling = StringMarshalling.Utf8)] public static partial void Metadata(string path, InitOptions* options, out nint error);
    [LibraryImport(Library, EntryPoint = "usearch_serialized_length")] public static partial nuint SerializedLength(nint index, out nint error);
    [LibraryImport(Library, EntryPoint = "usearch_memory_usage")] public static partial nuint MemoryUsage(nint index, out nint error);
    [LibraryImport(Library, EntryPoint = "usearch_size")] public static partial nuint Size(nint index, out nint error);
    [LibraryImport(Library, EntryPoint = "usearch_capacity")] public static partial nuint Capacity(nint index, out nint error);
    [LibraryImport(Library, EntryPoint = "usearch_dimensions")] public static partial nuint Dimensions(nint index, out nint error);
    [LibraryImport(Library, EntryPoint = "usearch_connectivity")] public static partial nuint Connectivity(nint index, out nint error);
    [LibraryImport(Library, EntryPoint = "usearch_expansion_add")] public static partial nuint ExpansionAdd(nint index, out nint error);
    [LibraryImport(Library, EntryPoint = "usearch_expansion_search")] public static partial nuint ExpansionSearch(nint index, out nint error);
    [LibraryImport(Library, EntryPoint = "usearch_change_expansion_search")] public static partial void ChangeExpansionSearch(nint index, nuint expansion, out nint error);
    [LibraryImport(Library, EntryPoint = "usearch_change_threads_add")] public static partial void ChangeThreadsAdd(nint index, nuint threads, out nint error);
    [LibraryImport(Library, EntryPoint = "usearch_change_threads_search")] public static partial void ChangeThreadsSearch(nint index, nuint threads, out nint error);
    [LibraryImport(Library, EntryPoint = "usearch_reserve")] public static partial void Reserve(nint index, nuint capacity, out nint error);
    [LibraryImport(Library, EntryPoint = "usearch_add")] public static partial void Add(nint index, ulong key, float* vector, int kind, out nint error);
    [LibraryImport(Library, EntryPoint = "usearch_contains")] [return: MarshalAs(UnmanagedType.U1)] public static partial bool Contains(nint index, ulong key, out nint error);
    [LibraryImport(Library, EntryPoint = "usearch_search")] public static partial nuint Search(nint index, float* query, int kind, nuint count, ulong* keys, float* distances, out nint error);

    /// <summary>Throws when a call reported an error.</summary>
    public static void Check(nint error, string what)
    {
        if (error != 0) throw new InvalidOperationException($"{what}: {Marshal.PtrToStringUTF8(error)}");
    }

    public static string Text(nint text) => text == 0 ? "" : Marshal.PtrToStringUTF8(text) ?? "";
}
