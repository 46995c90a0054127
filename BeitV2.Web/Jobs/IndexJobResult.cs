namespace BeitV2.Web.Jobs;

/// <summary>The <c>result</c> of an <c>index</c> job that succeeded.</summary>
/// <param name="Collection">the collection it filled.</param>
/// <param name="Items">items the collection holds after the job (dataset images; uploads added later are not counted).</param>
/// <param name="Seconds">time spent embedding in the runs of the job, summed (a resumed job counts every run).</param>
/// <param name="ImagesPerSecond">images embedded (and tokenized) per second over those runs, end to end: read, decoded, served.</param>
public sealed record IndexJobResult(string Collection, long Items, double Seconds, double ImagesPerSecond);
