using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace BeitV2.TestSupport;

/// <summary>
/// Checkpoint files an attacker could upload, written byte by byte (no Python at test time): a TorchScript
/// archive, safetensors whose header lies about the file, and torch.save zips whose pickle lies about its
/// storages or calls a Python function.
/// </summary>
public static class HostileCheckpoints
{
    /// <summary>
    /// The layout torch.jit.save writes: Python code under code/, constants.pkl, data.pkl (here the
    /// plain state-dict pickle of <see cref="Pth"/>, so a reader that ignores code/ would accept it).
    /// The module's __setstate__ prints a marker if anything ever runs it.
    /// </summary>
    public static byte[] TorchScript() => Zip(
        ("archive/data.pkl", StateDictPickle(4, storageElements: 4)),
        ("archive/code/__torch__/Marker.py",
            Encoding.UTF8.GetBytes("class Marker(Module):\n  __parameters__ = []\n  def __setstate__(self, state: Tuple[bool]):\n    print(\"PWNED-MARKER\")\n    self.training = state[0]\n    return None\n")),
        ("archive/constants.pkl", [0x80, 0x02, (byte)')', (byte)'.']),
        ("archive/data/0", new byte[16]),
        ("archive/version", "3\n"u8.ToArray()));

    /// <summary>A torch.save zip with one float tensor 'w' of <paramref name="shape"/> elements, viewing a storage that declares
    /// <paramref name="storageElements"/> elements and whose data/0 entry holds <paramref name="entryBytes"/> bytes.</summary>
    public static byte[] Pth(long shape, long storageElements, int? entryBytes = null, string? extraGlobal = null) => Zip(
        ("archive/data.pkl", StateDictPickle(shape, storageElements, extraGlobal)),
        ("archive/data/0", new byte[entryBytes ?? (int)(storageElements * 4)]),
        ("archive/version", "3\n"u8.ToArray()));

    /// <summary>
    /// {'w': _rebuild_tensor_v2(persistent ('storage', FloatStorage, '0', 'cpu', n), 0, (shape,), (1,), False, OrderedDict())},
    /// in protocol 2 as torch.save writes it; <paramref name="extraGlobal"/> ("module\nname") adds {'x': module.name('id')}.
    /// </summary>
    public static byte[] StateDictPickle(long shape, long storageElements, string? extraGlobal = null)
    {
        var p = new List<byte> { 0x80, 0x02, (byte)'}', (byte)'(' };
        Str(p, "w");
        Global(p, "torch._utils\n_rebuild_tensor_v2");
        p.Add((byte)'(');
        p.Add((byte)'(');
        Str(p, "storage");
        Global(p, "torch\nFloatStorage");
        Str(p, "0");
        Str(p, "cpu");
        Int(p, storageElements);
        p.Add((byte)'t');
        p.Add((byte)'Q');
        Int(p, 0);
        Int(p, shape);
        p.Add(0x85);
        Int(p, 1);
        p.Add(0x85);
        p.Add(0x89);
        Global(p, "collections\nOrderedDict");
        p.Add((byte)')');
        p.Add((byte)'R');
        p.Add((byte)'t');
        p.Add((byte)'R');
        if (extraGlobal is not null)
        {
            Str(p, "x");
            Global(p, extraGlobal);
            Str(p, "id");
            p.Add(0x85);
            p.Add((byte)'R');
        }
        p.Add((byte)'u');
        p.Add((byte)'.');
        return p.ToArray();
    }

    /// <summary>A safetensors file: the given header JSON, then <paramref name="dataBytes"/> zero bytes.</summary>
    public static byte[] Safetensors(string header, int dataBytes)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        return bytes;
    }

    /// <summary>Two float tensors of 4 elements with the given data offsets, over <paramref name="dataBytes"/> bytes.</summary>
    public static byte[] TwoTensors(string a, string b, int dataBytes) => Safetensors(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":" + a + "},\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":" + b + "}}", dataBytes);

    public static byte[] Zip(params (string Name, byte[] Bytes)[] entries)
    {
        using var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, bytes) in entries)
            {
                using var s = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
                s.Write(bytes);
            }
        return ms.ToArray();
    }

    private static void Str(List<byte> p, string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        p.Add((byte)'X');
        p.AddRange(BitConverter.GetBytes(b.Length));
        p.AddRange(b);
    }

    private static void Global(List<byte> p, string moduleNewlineName)
    {
        p.Add((byte)'c');
        p.AddRange(Encoding.ASCII.GetBytes(moduleNewlineName + "\n"));
    }

    private static void Int(List<byte> p, long v)
    {
        if (v is >= int.MinValue and <= int.MaxValue)
        {
            p.Add((byte)'J');
            p.AddRange(BitConverter.GetBytes((int)v));
        }
        else
        {
            p.Add(0x8a);
            p.Add(8);
            p.AddRange(BitConverter.GetBytes(v));
        }
    }
}
