using System.Runtime.CompilerServices;

namespace Bridge.CloudTasks;

/// <summary>One page of a list call, with the token that fetches the next (empty on the last page).</summary>
public sealed record Page<TResource>(IReadOnlyList<TResource> Items, string NextPageToken);

/// <summary>
/// A list call as a lazy sequence: nothing is fetched until enumeration starts, and each page is fetched when the
/// previous one is used up. Enumerate items directly, or whole pages with <see cref="AsPages"/>.
/// </summary>
public sealed class PagedAsyncSequence<TResource> : IAsyncEnumerable<TResource>
{
    private readonly Func<string, int?, CancellationToken, Task<Page<TResource>>> _fetch;
    private readonly string _firstPageToken;
    private readonly int? _pageSize;

    internal PagedAsyncSequence(Func<string, int?, CancellationToken, Task<Page<TResource>>> fetch, string? pageToken, int? pageSize)
    {
        _fetch = fetch;
        _firstPageToken = pageToken ?? string.Empty;
        _pageSize = pageSize;
    }

    /// <summary>The pages, as the server returns them.</summary>
    public async IAsyncEnumerable<Page<TResource>> AsPages([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var token = _firstPageToken;
        do
        {
            var page = await _fetch(token, _pageSize, cancellationToken).ConfigureAwait(false);
            yield return page;
            token = page.NextPageToken;
        }
        while (!string.IsNullOrEmpty(token));
    }

    /// <summary>Fetches only the first page, with <paramref name="pageSize"/> as the requested size.</summary>
    public Task<Page<TResource>> ReadPageAsync(int pageSize, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pageSize, 1);
        return _fetch(_firstPageToken, pageSize, cancellationToken);
    }

    public async IAsyncEnumerator<TResource> GetAsyncEnumerator(CancellationToken cancellationToken = default)
    {
        await foreach (var page in AsPages(cancellationToken).ConfigureAwait(false))
        {
            foreach (var item in page.Items)
            {
                yield return item;
            }
        }
    }
}
