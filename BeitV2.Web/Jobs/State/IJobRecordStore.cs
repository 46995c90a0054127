using System.Text.Json.Nodes;

namespace BeitV2.Web.Jobs.State;

/// <summary>
/// Where job records and their metrics live, and what excludes concurrent writers: files under a <c>flock</c> for the
/// single-server embedded mode (<see cref="FileJobRecordStore"/>), PostgreSQL rows under row locks when several servers
/// share the queue (<see cref="PostgresJobRecordStore"/>). <see cref="JobStore"/> is the one face the rest of the code sees.
/// </summary>
public interface IJobRecordStore
{
    /// <summary>Every job, oldest first.</summary>
    IReadOnlyList<JobRecord> List();

    /// <summary>The record, or null when there is no such job. A storage failure throws; it is never "no such job".</summary>
    JobRecord? Find(string id);

    void Create(JobRecord job);

    /// <summary>
    /// Applies <paramref name="change"/> under the job's exclusive lock (null from it = no change) and returns the record
    /// after it, or null when there is no such job. The lambda gets the store's clock: PostgreSQL's <c>now()</c> in the
    /// same transaction, so leases of several hosts are compared on one clock.
    /// </summary>
    JobRecord? Update(string id, Func<JobRecord, DateTimeOffset, JobRecord?> change);

    /// <summary>
    /// Removes a job: <paramref name="check"/> runs on the record under the job's lock (it throws to refuse), then
    /// <paramref name="removeFiles"/> (still under the lock), then the record goes. False when there is no such job.
    /// </summary>
    bool Delete(string id, Action<JobRecord> check, Action removeFiles);

    /// <summary>
    /// Appends one metrics entry; with <paramref name="runId"/>, only while that run still holds the job (checked in the
    /// same lock or transaction as the append: a fenced-out run appends nothing). False when it was refused.
    /// </summary>
    bool AppendMetrics(string id, JsonObject entry, string? runId);

    /// <summary>The job's metrics entries in the order they were appended (JSON text, one entry each).</summary>
    IReadOnlyList<string> ReadMetrics(string id);

    /// <summary>The store's clock (the database's for PostgreSQL).</summary>
    DateTimeOffset Now();
}
