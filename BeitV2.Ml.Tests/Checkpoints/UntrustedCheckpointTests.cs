using System.Buffers.Binary;
using System.Text.Json;
using BeitV2.Ml.Checkpoints;
using static BeitV2.TestSupport.HostileCheckpoints;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Checkpoints;

/// <summary>
/// Issue 15.1: checkpoint files are untrusted. TorchScript is refused by its layout (never loaded:
/// jit.load runs the archive's code), and every size a file declares is checked against the file before
/// the readers allocate it.
/// </summary>
public sealed class UntrustedCheckpointTests
{
    [Fact]
    public void TorchScriptArchive_IsRefusedWithTheConversion_BeforeAnythingReadsIt()
    {
        using var dir = new TempDirectory();
        var path = dir.File("ViT-B-16.pt");
        File.WriteAllBytes(path, TorchScript());

        Assert.Equal(CheckpointFileKind.TorchScript, CheckpointFormat.Detect(path));
        var e = Assert.Throws<CheckpointException>(() => StateDictFile.Read(path));
        Assert.Contains("TorchScript", e.Message);
        Assert.Contains("torch.jit.load('ViT-B-16.pt', map_location='cpu').state_dict()", e.Message);
        // Its data.pkl alone is a plain state dict: only the layout marks it, and the layout wins.
        Assert.Throws<CheckpointException>(() => PthArchiveCheck.Validate(path));
    }

    [Fact]
    public void PlainStateDictZip_WrittenByteByByte_Reads()
    {
        using var dir = new TempDirectory();
        var path = dir.File("ok.pth");
        File.WriteAllBytes(path, Pth(shape: 4, storageElements: 4));
        using var scope = NewDisposeScope();
        var sd = StateDictFile.Read(path);
        Assert.Equal(new long[] { 4 }, sd["w"].shape);
    }

    public static TheoryData<string, string> HostilePth => new()
    {
        // Read before: the storage's 4 MB were allocated for a 16-byte entry.
        { "storage larger than its entry", "declares 1000000 elements of 4 bytes but its entry holds 16 bytes" },
        { "tensor larger than its storage", "a tensor larger than its storage" },
        { "storage of 2^40 elements", "declares 1099511627776 elements" },
        { "call of os.system", "'os.system'" },
        { "legacy (non-zip) pickle", "neither a PyTorch zip" },
    };

    [Theory]
    [MemberData(nameof(HostilePth))]
    public void HostilePth_IsRefusedBeforeAllocation(string name, string message)
    {
        using var dir = new TempDirectory();
        var path = dir.File("hostile.pth");
        File.WriteAllBytes(path, name switch
        {
            "storage larger than its entry" => Pth(shape: 4, storageElements: 1_000_000, entryBytes: 16),
            "tensor larger than its storage" => Pth(shape: 1_000_000, storageElements: 4),
            "storage of 2^40 elements" => Pth(shape: 4, storageElements: 1L << 40, entryBytes: 16),
            "call of os.system" => Pth(shape: 4, storageElements: 4, extraGlobal: "os\nsystem"),
            "legacy (non-zip) pickle" => StateDictPickle(4, 4),
            _ => throw new ArgumentException(name),
        });
        var e = Assert.Throws<CheckpointException>(() => StateDictFile.Read(path));
        Assert.Contains(message, e.Message);
    }

    public static TheoryData<string, string> HostileSafetensors => new()
    {
        // Read before: both tensors took the same 16 bytes.
        { "overlapping offsets", "overlap" },
        // Read before: the 8 bytes between the tensors were skipped.
        { "gap between tensors", "gap of 8 bytes" },
        { "offsets past the end of the file", "ends at byte 4000" },
        { "shape declaring 40 GB over 16 bytes", "declares more bytes than the file holds" },
        { "dtype and shape disagree with the offsets", "declares 16 bytes by its dtype and shape but 8" },
        { "trailing bytes no tensor covers", "cover 32 bytes but the file holds 40" },
        { "header longer than the file", "nor a safetensors file" },
    };

    [Theory]
    [MemberData(nameof(HostileSafetensors))]
    public void HostileSafetensors_IsRefusedBeforeAllocation(string name, string message)
    {
        using var dir = new TempDirectory();
        var path = dir.File("hostile.safetensors");
        File.WriteAllBytes(path, name switch
        {
            "overlapping offsets" => TwoTensors("[0,16]", "[0,16]", 16),
            "gap between tensors" => TwoTensors("[0,16]", "[24,40]", 40),
            "offsets past the end of the file" => Safetensors("""{"a":{"dtype":"F32","shape":[1000],"data_offsets":[0,4000]}}""", 16),
            "shape declaring 40 GB over 16 bytes" => Safetensors("""{"a":{"dtype":"F32","shape":[100000,100000],"data_offsets":[0,16]}}""", 16),
            "dtype and shape disagree with the offsets" => TwoTensors("[0,8]", "[8,24]", 24),
            "trailing bytes no tensor covers" => TwoTensors("[0,16]", "[16,32]", 40),
            "header longer than the file" => HeaderLength(Safetensors("""{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", 16), 1000),
            _ => throw new ArgumentException(name),
        });
        var e = Assert.Throws<CheckpointException>(() => StateDictFile.Read(path));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void SafetensorsHeaderOver100MB_IsRefusedWithoutReadingIt()
    {
        using var dir = new TempDirectory();
        var path = dir.File("huge-header.safetensors");
        // A sparse file: 8 + 100,000,001 + 16 bytes on disk cost nothing, and a reader that believed
        // the header would allocate and parse 100 MB.
        using (var f = File.Create(path))
        {
            var head = new byte[9];
            BinaryPrimitives.WriteUInt64LittleEndian(head, SafetensorsCheck.MaxHeaderBytes + 1);
            head[8] = (byte)'{';
            f.Write(head);
            f.SetLength(8 + SafetensorsCheck.MaxHeaderBytes + 1 + 16);
        }
        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<CheckpointException>(() => StateDictFile.Read(path));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains($"the limit is {SafetensorsCheck.MaxHeaderBytes} bytes", e.Message);
        Assert.True(allocated < 10_000_000, $"refusing the header allocated {allocated} bytes");
    }

    public static TheoryData<string> AbsurdOverrides => new()
    {
        """{"depth": 100000}""",
        """{"embed_dim": 1000000}""",
        """{"num_heads": 65536}""",
        """{"img_size": 100000}""",
        """{"img_size": [100000, 100000]}""",
        """{"encoder": {"depth": 100000}}""",
        """{"patch_size": 1, "img_size": 1024}""",
        """{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}""",
    };

    [Theory]
    [MemberData(nameof(AbsurdOverrides))]
    public void AbsurdConfigOverride_IsRefusedBeforeAnythingIsBuilt(string json)
    {
        using var scope = NewDisposeScope();
        var sd = CheckpointKeys.Normalize(StateDictFile.Read(CheckpointFixtures.Pth("vit_cls")));
        using var doc = JsonDocument.Parse(json);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<CheckpointException>(() => ArchitectureDeduction.Deduce(sd, doc.RootElement));
        Assert.Contains("The config override is refused", e.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 10_000_000);
    }

    private static byte[] HeaderLength(byte[] file, ulong length)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(file, length);
        return file;
    }
}
