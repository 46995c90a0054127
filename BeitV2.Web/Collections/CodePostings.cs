using System.Runtime.InteropServices;

namespace BeitV2.Web.Collections;

/// <summary>One patch that maps to a code: the item and the patch's place in its token grid.</summary>
public readonly record struct CodePosting(long Item, int Row, int Col);

/// <summary>
/// The inverted index code → patches of a collection's token maps, one immutable file per generation
/// (<c>postings-{gen}.bin</c>): a header, the offsets of each code's run (<c>codebookSize + 1</c> longs) and the entries
/// (item, position in the grid), ordered by code, then item, then position. Built by the index job from <c>tokens.u16</c>
/// with a counting sort; items added later (uploads) are not in it: <see cref="CollectionCodes"/> scans their token maps.
/// </summary>
public static class CodePostings
{
    private const int Magic = 0x54534f50;   // "POST"
    private const int HeaderBytes = 4 + 4 + 8 + 4 + 4;

    /// <summary>Writes the postings of <paramref name="items"/> token maps atomically to <paramref name="path"/>.</summary>
    public static void Write(string path, ReadOnlySpan<ushort> tokens, long items, int rows, int cols, int codebookSize)
    {
        var perItem = rows * cols;
        var offsets = new long[codebookSize + 1];
        foreach (var code in tokens[..checked((int)(items * perItem))]) offsets[code + 1]++;
        for (var c = 0; c < codebookSize; c++) offsets[c + 1] += offsets[c];
        var next = offsets[..^1].ToArray();
        var entries = new int[checked(2 * (int)offsets[^1])];
        for (var i = 0; i < items; i++)
            for (var p = 0; p < perItem; p++)
            {
                var at = next[tokens[(int)(i * perItem + p)]]++;
                entries[2 * at] = i;
                entries[2 * at + 1] = p;
            }
        var temp = path + ".tmp-" + Guid.NewGuid().ToString("N");
        try
        {
            using (var f = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            using (var w = new BinaryWriter(f))
            {
                w.Write(Magic);
                w.Write(codebookSize);
                w.Write(items);
                w.Write(rows);
                w.Write(cols);
                w.Write(MemoryMarshal.AsBytes(offsets.AsSpan()));
                w.Write(MemoryMarshal.AsBytes(entries.AsSpan()));
                w.Flush();
                f.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    /// <summary>How many patches each code has in the file.</summary>
    public static long[] Counts(Stream file, int codebookSize)
    {
        var offsets = Offsets(file, codebookSize);
        var counts = new long[codebookSize];
        for (var c = 0; c < codebookSize; c++) counts[c] = offsets[c + 1] - offsets[c];
        return counts;
    }

    /// <summary>The patches of <paramref name="code"/> from its <paramref name="skip"/>-th, at most <paramref name="take"/>, and how many it has.</summary>
    public static (long Total, List<CodePosting> Page) Read(Stream file, int codebookSize, int code, long skip, int take)
    {
        var offsets = Offsets(file, codebookSize);
        var (start, end) = (offsets[code], offsets[code + 1]);
        var total = end - start;
        var page = new List<CodePosting>();
        var from = start + Math.Min(skip, total);
        var count = (int)Math.Min(take, end - from);
        if (count <= 0) return (total, page);
        file.Position = HeaderBytes + 8L * (codebookSize + 1) + from * 8;
        var entries = new int[2 * count];
        file.ReadExactly(MemoryMarshal.AsBytes(entries.AsSpan()));
        var (_, cols) = Grid(file);
        for (var i = 0; i < count; i++) page.Add(new CodePosting(entries[2 * i], entries[2 * i + 1] / cols, entries[2 * i + 1] % cols));
        return (total, page);
    }

    private static (int Rows, int Cols) Grid(Stream file)
    {
        file.Position = 16;
        Span<int> grid = stackalloc int[2];
        file.ReadExactly(MemoryMarshal.AsBytes(grid));
        return (grid[0], grid[1]);
    }

    private static long[] Offsets(Stream file, int codebookSize)
    {
        file.Position = 0;
        Span<byte> header = stackalloc byte[HeaderBytes];
        file.ReadExactly(header);
        var magic = BitConverter.ToInt32(header);
        var size = BitConverter.ToInt32(header[4..]);
        if (magic != Magic || size != codebookSize) throw new IOException("The collection's postings file is not one this server wrote for its codebook.");
        var offsets = new long[codebookSize + 1];
        file.ReadExactly(MemoryMarshal.AsBytes(offsets.AsSpan()));
        return offsets;
    }
}
