namespace Bridge.Core.Internal;

/// <summary>Reads a request body up to a limit, and no further, for both hosts.</summary>
internal static class BoundedBody
{
    /// <summary>The body, or null when it is (or declares itself) larger than <paramref name="limit"/>.</summary>
    public static async Task<byte[]?> ReadAsync(Stream body, long? contentLength, int limit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (contentLength > limit)
        {
            return null;
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = await body.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + read > limit)
            {
                return null;
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }
}
