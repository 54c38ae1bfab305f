using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;

namespace Bridge.Core.Internal;

/// <summary>
/// One issuer's discovery document and signing keys: cached for <c>cacheDuration</c>; a forced refresh (unknown
/// <c>kid</c>) happens at most once per <c>refreshInterval</c>, and concurrent callers share one fetch, so a storm of
/// forged kids can't flood the issuer. A failed refresh keeps serving the keys it has.
/// </summary>
internal sealed class IssuerKeyCache(string discoveryUrl, IDocumentRetriever retriever, TimeSpan cacheDuration, TimeSpan refreshInterval, TimeProvider time)
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private OpenIdConnectConfiguration? _current;
    private DateTimeOffset _fetchedAt;
    private DateTimeOffset _lastForcedRefresh = DateTimeOffset.MinValue;

    public async Task<OpenIdConnectConfiguration> GetAsync(bool forceRefresh, CancellationToken cancellationToken)
    {
        if (IsUsable(forceRefresh, out var current))
        {
            return current;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (IsUsable(forceRefresh, out current))
            {
                return current;
            }

            try
            {
                var fetched = await OpenIdConnectConfigurationRetriever.GetAsync(discoveryUrl, retriever, cancellationToken).ConfigureAwait(false);
                _current = fetched;
                _fetchedAt = time.GetUtcNow();
                if (forceRefresh)
                {
                    _lastForcedRefresh = _fetchedAt;
                }

                return fetched;
            }
            catch (Exception) when (_current is not null)
            {
                if (forceRefresh)
                {
                    _lastForcedRefresh = time.GetUtcNow();
                }

                return _current;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private bool IsUsable(bool forceRefresh, out OpenIdConnectConfiguration current)
    {
        current = _current!;
        if (_current is null)
        {
            return false;
        }

        var now = time.GetUtcNow();
        return forceRefresh ? now - _lastForcedRefresh < refreshInterval : now - _fetchedAt < cacheDuration;
    }
}
