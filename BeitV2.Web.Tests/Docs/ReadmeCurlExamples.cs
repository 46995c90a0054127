using System.Text.RegularExpressions;

namespace BeitV2.Web.Tests.Docs;

/// <summary>
/// The <c>curl</c> commands of README.md's <c>```bash</c> blocks. A block right after the line
/// <see cref="RunMarker"/> is run against a started server, command by command; every other command is checked
/// (its route exists, the images it sends are in the repository).
/// </summary>
public sealed partial class ReadmeCurlExamples
{
    /// <summary>The HTML comment (invisible on GitHub) that marks the next bash block as run by the README test.</summary>
    public const string RunMarker = "<!-- readme-test: run -->";

    private ReadmeCurlExamples(IReadOnlyList<CurlExample> examples) => Examples = examples;

    public IReadOnlyList<CurlExample> Examples { get; }

    public IEnumerable<CurlExample> Runnable => Examples.Where(e => e.Run);

    public static ReadmeCurlExamples Parse(string markdown)
    {
        var lines = markdown.Replace("\r\n", "\n").Split('\n');
        var examples = new List<CurlExample>();
        var lastNonBlank = "";
        var block = 0;
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            if (line.TrimStart().StartsWith("```bash", StringComparison.Ordinal))
            {
                var run = lastNonBlank.Trim() == RunMarker;
                var indent = line.Length - line.TrimStart().Length;
                block++;
                var command = "";
                var startLine = 0;
                for (i++; i < lines.Length && !lines[i].TrimStart().StartsWith("```", StringComparison.Ordinal); i++)
                {
                    var text = lines[i].Length >= indent ? lines[i][indent..] : lines[i].TrimStart();
                    if (command.Length == 0)
                    {
                        if (!text.StartsWith("curl ", StringComparison.Ordinal)) continue;
                        startLine = i + 1;
                    }
                    if (text.TrimEnd().EndsWith('\\'))
                    {
                        command += text.TrimEnd()[..^1] + " ";
                        continue;
                    }
                    command += text;
                    examples.Add(CurlExample.From(command, startLine, block, run));
                    command = "";
                }
                lastNonBlank = "";
                continue;
            }
            if (line.Trim().Length > 0) lastNonBlank = line;
        }
        return new ReadmeCurlExamples(examples);
    }
}

/// <summary>One curl command: the shell text (its trailing comment apart), where it is, and what it asks.</summary>
public sealed partial record CurlExample(string Command, string? Comment, int Line, int Block, bool Run)
{
    /// <summary>The HTTP method the command sends.</summary>
    public string Method
    {
        get
        {
            var explicitMethod = ExplicitMethod().Match(Command);
            if (explicitMethod.Success) return explicitMethod.Groups[1].Value;
            return DataOption().IsMatch(Command) ? "POST" : "GET";
        }
    }

    /// <summary>The URL's path (no query), e.g. <c>/api/v1/classify</c>.</summary>
    public string Path
    {
        get
        {
            var url = Url().Match(Command);
            if (!url.Success) throw new InvalidOperationException($"README line {Line}: no server URL in '{Command}'.");
            var path = url.Groups["path"].Value;
            var q = path.IndexOf('?');
            return q >= 0 ? path[..q] : path;
        }
    }

    /// <summary>The files the command uploads (<c>-F x=@file</c>, <c>--data-binary @file</c>).</summary>
    public IReadOnlyList<string> Files => Upload().Matches(Command).Select(m => m.Groups[1].Value).ToList();

    /// <summary>The file the answer is written to (<c>-o file</c>), if any.</summary>
    public string? Output => OutputOption().Match(Command) is { Success: true } m ? m.Groups[1].Value : null;

    /// <summary>The status the README promises: a comment that starts with one (<c># 409 for …</c>), else any 2xx.</summary>
    public int? ExpectedStatus => Comment is not null && StatusComment().Match(Comment) is { Success: true } m ? int.Parse(m.Groups[1].Value) : null;

    /// <summary>The command with its URL pointed at <paramref name="baseUrl"/> (README examples use localhost:5000, or host:8080 in deployment sections).</summary>
    public string AgainstServer(string baseUrl) => Url().Replace(Command, m => baseUrl + m.Groups["path"].Value);

    public override string ToString() => $"README line {Line}: {Command}";

    public static CurlExample From(string text, int line, int block, bool run)
    {
        // A comment starts at " #" outside quotes (a URL fragment never follows a space).
        string? comment = null;
        var quote = '\0';
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (quote != '\0') { if (c == quote) quote = '\0'; continue; }
            if (c is '\'' or '"') { quote = c; continue; }
            if (c == '#' && i > 0 && char.IsWhiteSpace(text[i - 1]))
            {
                comment = text[(i + 1)..].Trim();
                text = text[..i];
                break;
            }
        }
        return new CurlExample(Regex.Replace(text.Trim(), @"\s+", " "), comment, line, block, run);
    }

    [GeneratedRegex(@"(?:^|\s)-X\s+([A-Z]+)")]
    private static partial Regex ExplicitMethod();

    [GeneratedRegex(@"(?:^|\s)(?:-F|-d|--data|--data-binary|--form)\s")]
    private static partial Regex DataOption();

    [GeneratedRegex(@"(?:https?://)?(?:localhost|host|127\.0\.0\.1):\d+(?<path>/[^\s'""]*)")]
    private static partial Regex Url();

    [GeneratedRegex(@"=?@([^\s'"";]+)")]
    private static partial Regex Upload();

    [GeneratedRegex(@"(?:^|\s)-o\s+(\S+)")]
    private static partial Regex OutputOption();

    [GeneratedRegex(@"^([1-5]\d\d)\b")]
    private static partial Regex StatusComment();
}
