using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;

namespace BeitV2.Bench;

/// <summary>
/// <c>hub</c>: a scale-out check against running servers (e.g. the compose deployment): connects
/// SignalR clients round-robin to the servers (each calls <c>SubscribeAll</c>), submits small fine-tune
/// jobs round-robin, waits for them, and reports which server ran each job, how many runs each took,
/// and whether every client heard every job's progress and final status, whichever server it is on.
/// </summary>
public static class HubBench
{
    public const string Usage = """
        hub --servers URL[,URL...] [--jobs 4] [--clients 50] [--images 128] [--timeout-minutes 30]
          Against running servers that share job storage and the SignalR backplane (see README "Scaling out").
        """;

    public static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        var servers = new List<Uri>();
        int jobs = 4, clients = 50, images = 128, timeoutMinutes = 30;
        for (var i = 0; i < args.Count; i++)
        {
            string Next() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--servers": servers.AddRange(Next().Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => new Uri(s.TrimEnd('/') + "/"))); break;
                case "--jobs": jobs = int.Parse(Next()); break;
                case "--clients": clients = int.Parse(Next()); break;
                case "--images": images = int.Parse(Next()); break;
                case "--timeout-minutes": timeoutMinutes = int.Parse(Next()); break;
                default: throw new ArgumentException($"Unknown option {args[i]}");
            }
        }
        if (servers.Count == 0) throw new ArgumentException("--servers is required");

        var http = servers.Select(s => new HttpClient { BaseAddress = s, Timeout = TimeSpan.FromSeconds(60) }).ToList();
        var progress = new ConcurrentDictionary<(int Client, string Job), int>();
        var finals = new ConcurrentDictionary<(int Client, string Job), string>();
        var connections = new List<HubConnection>();
        var clock = Stopwatch.StartNew();
        for (var c = 0; c < clients; c++)
        {
            var client = c;
            var hub = new HubConnectionBuilder().WithUrl(new Uri(servers[c % servers.Count], "hubs/training")).WithAutomaticReconnect().Build();
            hub.On<JsonElement>("progress", m => progress.AddOrUpdate((client, m.GetProperty("jobId").GetString()!), 1, (_, n) => n + 1));
            hub.On<JsonElement>("status", m =>
            {
                var status = m.GetProperty("status").GetString()!;
                if (status is "succeeded" or "failed" or "cancelled") finals[(client, m.GetProperty("jobId").GetString()!)] = status;
            });
            await hub.StartAsync();
            await hub.InvokeAsync("SubscribeAll");
            connections.Add(hub);
        }
        Console.WriteLine($"{clients} SignalR clients connected in {clock.Elapsed.TotalSeconds:F1} s");

        var ids = new List<string>();
        for (var j = 0; j < jobs; j++)
        {
            var response = await http[j % http.Count].PostAsJsonAsync("api/v1/jobs", new
            {
                type = "finetune", dataset = "fashion-mnist", name = $"hub bench {j}",
                config = new { batchSize = 16, maxTrainImages = images, maxValImages = 16, reportEverySteps = 1, seed = j },
            });
            var body = await response.Content.ReadFromJsonAsync<JsonElement>();
            if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"job submission failed: {body}");
            ids.Add(body.GetProperty("id").GetString()!);
        }

        var deadline = DateTime.UtcNow.AddMinutes(timeoutMinutes);
        var records = new Dictionary<string, JsonElement>();
        while (DateTime.UtcNow < deadline)
        {
            records.Clear();
            foreach (var (id, k) in ids.Select((id, k) => (id, k)))
                records[id] = await http[(k + 1) % http.Count].GetFromJsonAsync<JsonElement>($"api/v1/jobs/{id}");
            if (records.Values.All(r => r.GetProperty("status").GetString() is "succeeded" or "failed" or "cancelled")) break;
            await Task.Delay(1000);
        }
        await Task.Delay(3000); // let the last status messages arrive
        var wall = clock.Elapsed;

        var report = new StringBuilder();
        report.AppendLine($"| job | status | server | runs | steps | clients that heard progress | clients that heard the final status |");
        report.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var id in ids)
        {
            var r = records[id];
            var heard = Enumerable.Range(0, clients).Count(c => progress.ContainsKey((c, id)));
            var final = Enumerable.Range(0, clients).Count(c => finals.TryGetValue((c, id), out var s) && s == r.GetProperty("status").GetString());
            report.AppendLine($"| {id} | {r.GetProperty("status").GetString()} | {r.GetProperty("server").GetString()} | {r.GetProperty("runs").GetInt32()} | " +
                              $"{r.GetProperty("progress").GetProperty("step").GetInt64()} | {heard}/{clients} | {final}/{clients} |");
        }
        var perClient = Enumerable.Range(0, clients).Select(c => ids.Sum(id => progress.GetValueOrDefault((c, id)))).Order().ToList();
        report.AppendLine();
        report.AppendLine($"{jobs} jobs on {servers.Count} servers, {clients} clients; wall time {wall.TotalSeconds:F0} s; " +
                          $"progress messages per client: min {perClient[0]}, median {perClient[perClient.Count / 2]}, max {perClient[^1]}.");
        Console.WriteLine(report);
        foreach (var hub in connections) await hub.DisposeAsync();
        return records.Values.All(r => r.GetProperty("status").GetString() == "succeeded") ? 0 : 1;
    }
}
