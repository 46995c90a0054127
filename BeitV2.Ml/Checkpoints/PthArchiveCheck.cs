using System.Buffers.Binary;
using System.IO.Compression;
using System.Numerics;
using System.Text;

namespace BeitV2.Ml.Checkpoints;

/// <summary>
/// Walks a <c>torch.save</c> zip's <c>data.pkl</c> before TorchSharp.PyBridge unpickles it, without building
/// anything. The unpickler (Razorvine.Pickle) never instantiates arbitrary .NET types: an unknown Python class
/// becomes a dictionary. But it allocates what the pickle declares: a storage's element count times its
/// element size (before reading the zip entry), and a tensor's full shape (before viewing the storage). So this
/// walk refuses, before any allocation:
/// <list type="bullet">
/// <item>opcodes outside the small set a state dict needs (no INST/OBJ/EXT, no out-of-band buffers);</item>
/// <item>any Python global outside an allow-list (OrderedDict, the tensor rebuild functions, the storage
/// types, argparse.Namespace as official files carry their training args);</item>
/// <item>a storage whose zip entry is missing, stored with another size, or larger than the file;</item>
/// <item>a tensor whose shape, strides and offset do not fit inside its storage;</item>
/// <item>storages or tensors that together declare more than twice the file's bytes (views of one storage);</item>
/// <item>a data.pkl over <see cref="MaxPickleBytes"/>.</item>
/// </list>
/// </summary>
public static class PthArchiveCheck
{
    /// <summary>data.pkl describes, it does not hold, the tensors: the largest official BEiT files have a few hundred KB.</summary>
    public const long MaxPickleBytes = 64L << 20;

    private static readonly HashSet<string> AllowedGlobals = new(StringComparer.Ordinal)
    {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
        "argparse.Namespace",
    };

    private static readonly Dictionary<string, int> StorageElementSizes = new(StringComparer.Ordinal)
    {
        ["DoubleStorage"] = 8, ["FloatStorage"] = 4, ["HalfStorage"] = 2, ["BFloat16Storage"] = 2, ["LongStorage"] = 8,
        ["IntStorage"] = 4, ["ShortStorage"] = 2, ["CharStorage"] = 1, ["ByteStorage"] = 1, ["BoolStorage"] = 1,
        ["ComplexFloatStorage"] = 8, ["ComplexDoubleStorage"] = 16,
    };

    private sealed record Global(string Name);
    private sealed record Storage(long Elements, int ElementSize);
    private sealed class Mark;
    private sealed class Opaque;

    private static readonly Mark TheMark = new();
    private static readonly Opaque Something = new();

    /// <exception cref="CheckpointException">the archive is not a plain state-dict pickle that fits its file.</exception>
    public static void Validate(string path)
    {
        var file = Path.GetFileName(path);
        using var stream = File.OpenRead(path);
        using var zip = new ZipArchive(stream, ZipArchiveMode.Read);
        if (zip.Entries.Any(CheckpointFormat.IsTorchScriptEntry)) throw new CheckpointException(CheckpointFormat.TorchScriptAdvice);
        // The same entry the unpickler takes (the first whose name ends with data.pkl), and only one.
        var pickles = zip.Entries.Where(e => e.Name.EndsWith("data.pkl", StringComparison.Ordinal)).ToList();
        if (pickles.Count != 1 || pickles[0].Name != "data.pkl")
            throw Bad(file, "a PyTorch zip holds exactly one data.pkl");
        var pkl = pickles[0];
        if (pkl.Length > MaxPickleBytes || pkl.Length > stream.Length * 1024)
            throw Bad(file, $"its data.pkl declares {pkl.Length} bytes; the limit is {MaxPickleBytes}");
        var prefix = pkl.FullName[..^"data.pkl".Length];
        var entries = zip.Entries.ToDictionary(e => e.FullName, StringComparer.Ordinal);

        var bytes = new byte[pkl.Length];
        using (var s = pkl.Open())
        {
            var n = s.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false);
            if (n != bytes.Length || s.ReadByte() != -1) throw Bad(file, "its data.pkl is not the size its zip entry declares");
        }
        new Walker(file, bytes, key => entries.GetValueOrDefault(prefix + "data/" + key), stream.Length).Run();
    }

    private static CheckpointException Bad(string file, string why) =>
        new($"'{file}' is not a usable PyTorch state dict: {why}. Save the weights with torch.save(model.state_dict(), path) or as safetensors.");

    private sealed class Walker(string file, byte[] data, Func<string, ZipArchiveEntry?> entry, long fileLength)
    {
        private readonly List<object> stack = [];
        private readonly Dictionary<long, object> memo = [];
        private int pos;
        private long storageBytes, tensorBytes;

        public void Run()
        {
            while (true)
            {
                var op = U8();
                switch (op)
                {
                    case 0x80: U8(); break; // PROTO
                    case 0x95: Take(8); break; // FRAME
                    case (byte)'.': return; // STOP
                    case (byte)'(': stack.Add(TheMark); break;
                    case (byte)'0': Pop(); break;
                    case (byte)'1': PopMark(); break;
                    case (byte)'2': stack.Add(Peek()); break;
                    case (byte)'N': stack.Add(Something); break;
                    case 0x88 or 0x89: stack.Add(Something); break; // NEWTRUE, NEWFALSE
                    case (byte)'J': stack.Add((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;
                    case (byte)'K': stack.Add((long)U8()); break;
                    case (byte)'M': stack.Add((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break;
                    case 0x8a: stack.Add(Long(Take(U8()))); break; // LONG1
                    case 0x8b: stack.Add(Long(Take(Len4()))); break; // LONG4
                    case (byte)'G': Take(8); stack.Add(Something); break; // BINFLOAT
                    case (byte)'X': stack.Add(Utf8(Take(Len4()))); break; // BINUNICODE
                    case 0x8c: stack.Add(Utf8(Take(U8()))); break; // SHORT_BINUNICODE
                    case 0x8d: stack.Add(Utf8(Take(Len8()))); break; // BINUNICODE8
                    case (byte)'T': stack.Add(Utf8(Take(Len4()))); break; // BINSTRING
                    case (byte)'U': stack.Add(Utf8(Take(U8()))); break; // SHORT_BINSTRING
                    case (byte)'B': Take(Len4()); stack.Add(Something); break; // BINBYTES
                    case (byte)'C': Take(U8()); stack.Add(Something); break; // SHORT_BINBYTES
                    case 0x8e: Take(Len8()); stack.Add(Something); break; // BINBYTES8
                    case (byte)'c': stack.Add(AllowGlobal(Line() + "." + Line())); break; // GLOBAL
                    case 0x93: // STACK_GLOBAL
                    {
                        var name = Pop() as string;
                        var module = Pop() as string;
                        if (name is null || module is null) throw Bad(file, "a malformed class reference");
                        stack.Add(AllowGlobal(module + "." + name));
                        break;
                    }
                    case (byte)'}' or (byte)']' or 0x8f: stack.Add(Something); break; // EMPTY_DICT, EMPTY_LIST, EMPTY_SET
                    case (byte)')': stack.Add(Array.Empty<object>()); break;
                    case (byte)'t': stack.Add(PopMark().ToArray()); break; // TUPLE
                    case 0x85: stack.Add(PopN(1)); break;
                    case 0x86: stack.Add(PopN(2)); break;
                    case 0x87: stack.Add(PopN(3)); break;
                    case (byte)'d' or (byte)'l' or 0x91: PopMark(); stack.Add(Something); break; // DICT, LIST, FROZENSET
                    case (byte)'a': Pop(); Peek(); break; // APPEND
                    case (byte)'e' or (byte)'u' or 0x90: PopMark(); Peek(); break; // APPENDS, SETITEMS, ADDITEMS
                    case (byte)'s': Pop(); Pop(); Peek(); break; // SETITEM
                    case (byte)'b': Pop(); Peek(); break; // BUILD
                    case (byte)'h': stack.Add(Get(U8())); break; // BINGET
                    case (byte)'j': stack.Add(Get(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break; // LONG_BINGET
                    case (byte)'q': memo[U8()] = Peek(); break; // BINPUT
                    case (byte)'r': memo[BinaryPrimitives.ReadUInt32LittleEndian(Take(4))] = Peek(); break; // LONG_BINPUT
                    case 0x94: memo[memo.Count] = Peek(); break; // MEMOIZE
                    case (byte)'Q': stack.Add(PersistentStorage(Pop())); break; // BINPERSID
                    case (byte)'R': // REDUCE
                    {
                        var args = Pop() as object[] ?? throw Bad(file, "a call without an argument tuple");
                        var callable = Pop() as Global ?? throw Bad(file, "a call of something that is not an allowed class");
                        if (callable.Name is "torch._utils._rebuild_tensor" or "torch._utils._rebuild_tensor_v2") CheckTensor(args);
                        stack.Add(Something);
                        break;
                    }
                    case 0x81: // NEWOBJ
                    {
                        Pop();
                        if (Pop() is not Global) throw Bad(file, "an object of something that is not an allowed class");
                        stack.Add(Something);
                        break;
                    }
                    default:
                        throw Bad(file, $"its data.pkl uses pickle opcode 0x{op:x2}, which a state dict does not need");
                }
            }
        }

        private Global AllowGlobal(string name)
        {
            if (AllowedGlobals.Contains(name)) return new Global(name);
            if (name.StartsWith("torch.", StringComparison.Ordinal) && StorageElementSizes.ContainsKey(name["torch.".Length..])) return new Global(name);
            throw Bad(file, $"its data.pkl refers to the Python object '{name}', which a state dict does not need");
        }

        /// <summary>('storage', torch.XStorage, key, location, element count): the entry data/key must hold exactly those bytes.</summary>
        private Storage PersistentStorage(object pid)
        {
            if (pid is not object[] { Length: 5 } t || t[0] is not "storage" || t[1] is not Global g || t[2] is not string key || t[4] is not long count
                || !StorageElementSizes.TryGetValue(g.Name["torch.".Length..], out var size))
                throw Bad(file, "a storage reference that is not ('storage', type, key, location, size)");
            var e = entry(key) ?? throw Bad(file, $"storage '{key}' has no data/{key} entry");
            if (count < 0 || count > fileLength / size || count * size != e.Length || e.Length > fileLength)
                throw Bad(file, $"storage '{key}' declares {count} elements of {size} bytes but its entry holds {e.Length} bytes");
            // The unpickler allocates each reference anew, so a storage referenced many times counts each time.
            storageBytes += e.Length;
            if (storageBytes > 2 * fileLength) throw Bad(file, "its storages are referenced more often than a state dict needs");
            return new Storage(count, size);
        }

        /// <summary>_rebuild_tensor_v2(storage, offset, shape, stride, ...): the view must lie inside the storage.</summary>
        private void CheckTensor(object[] args)
        {
            if (args.Length < 4 || args[0] is not Storage s || args[1] is not long offset || args[2] is not object[] shape || args[3] is not object[] stride
                || shape.Length != stride.Length || shape.Length > 16)
                throw Bad(file, "a tensor record that is not (storage, offset, shape, stride, ...)");
            long elements = 1, last = offset;
            if (offset < 0) throw Bad(file, "a tensor with a negative storage offset");
            for (var i = 0; i < shape.Length; i++)
            {
                if (shape[i] is not long dim || stride[i] is not long step || dim < 0 || step < 0)
                    throw Bad(file, "a tensor with an invalid shape or stride");
                if (dim == 0) { elements = 0; continue; }
                if (elements > s.Elements / dim || (dim - 1) > (long.MaxValue - last) / Math.Max(step, 1))
                    throw Bad(file, "a tensor larger than its storage");
                elements *= dim;
                last += (dim - 1) * step;
            }
            if (elements > 0 && (elements > s.Elements || last >= s.Elements))
                throw Bad(file, $"a tensor of {elements} elements that does not fit in its storage of {s.Elements}");
            // Each tensor is allocated at its full size before it views its storage: views of one storage
            // (tied weights) are fine, thousands of views of it are a memory bomb.
            tensorBytes += elements * s.ElementSize;
            if (tensorBytes > 2 * fileLength) throw Bad(file, "its tensors together hold more than twice the bytes of the file");
        }

        private byte U8() => pos < data.Length ? data[pos++] : throw Bad(file, "its data.pkl ends early");

        private ReadOnlySpan<byte> Take(long n)
        {
            if (n < 0 || n > data.Length - pos) throw Bad(file, "its data.pkl ends early");
            var span = data.AsSpan(pos, (int)n);
            pos += (int)n;
            return span;
        }

        private long Len4() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));
        private long Len8() => (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(Take(8)), long.MaxValue);

        private static object Long(ReadOnlySpan<byte> b) =>
            b.Length <= 8 ? (object)(long)new BigInteger(b, isUnsigned: false, isBigEndian: false) : Something;

        private string Utf8(ReadOnlySpan<byte> b) => Encoding.UTF8.GetString(b);

        private string Line()
        {
            var end = Array.IndexOf(data, (byte)'\n', pos);
            if (end < 0 || end - pos > 256) throw Bad(file, "a malformed class reference");
            var s = Encoding.ASCII.GetString(data, pos, end - pos);
            pos = end + 1;
            return s;
        }

        private object Get(long key) => memo.TryGetValue(key, out var v) ? v : throw Bad(file, "a reference to an unknown memo entry");
        private object Peek() => stack.Count > 0 ? stack[^1] : throw Bad(file, "a malformed pickle (empty stack)");

        private object Pop()
        {
            var v = Peek();
            stack.RemoveAt(stack.Count - 1);
            if (v is Mark) throw Bad(file, "a malformed pickle (unexpected mark)");
            return v;
        }

        private object[] PopN(int n)
        {
            var items = new object[n];
            for (var i = n - 1; i >= 0; i--) items[i] = Pop();
            return items;
        }

        private List<object> PopMark()
        {
            var i = stack.FindLastIndex(o => o is Mark);
            if (i < 0) throw Bad(file, "a malformed pickle (no mark)");
            var items = stack.GetRange(i + 1, stack.Count - i - 1);
            stack.RemoveRange(i, stack.Count - i);
            return items;
        }
    }
}
