namespace BeitV2.Ml.Data;

/// <summary>
/// The single exception the dataset readers and the archive importer raise for bad data, with a
/// message that names the offending file and an <see cref="Error"/> kind for programmatic handling.
/// </summary>
public sealed class DatasetException : Exception
{
    /// <summary>Creates the exception.</summary>
    public DatasetException(DatasetError error, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Error = error;
    }

    /// <summary>What went wrong.</summary>
    public DatasetError Error { get; }
}
