using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text.Json;

namespace Bridge.Core.Internal;

/// <summary>How an issuer's keys are fetched and kept.</summary>
internal sealed record IssuerKeySettings(
    TimeSpan CacheDuration,
    TimeSpan RefreshInterval,
    TimeSpan FetchTimeout,
    TimeSpan GracePeriod,
    TimeSpan FailureBackoff)
{
    /// <summary>Keys taken from one JWKS; Google publishes two or three.</summary>
    public const int MaxKeys = 16;

    /// <summary>Largest discovery document or JWKS read.</summary>
    public const int MaxDocumentBytes = 256 * 1024;
}

/// <summary>Discovery or JWKS could not be fetched and no usable keys are held: a 503, so Cloud Tasks retries.</summary>
internal sealed class KeysUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// One issuer's signing keys, from its OIDC discovery document and JWKS. The rules that keep a slow or hostile issuer
/// from stalling or flooding the receiver:
/// <list type="bullet">
/// <item>one fetch at a time, shared by every caller waiting for it (each caller can stop waiting on its own token);</item>
/// <item>each fetch bounded by its own short timeout, whatever the callers' tokens;</item>
/// <item>keys past their cache time keep serving while a refresh runs in the background, and for a bounded grace
/// period while refreshes fail;</item>
/// <item>a failed fetch is remembered briefly, so a dead issuer is not asked again on every call;</item>
/// <item>an unknown <c>kid</c> forces a refresh at most once per refresh interval;</item>
/// <item>at most <see cref="IssuerKeySettings.MaxKeys"/> keys per set, and the replaced set is disposed one refresh
/// later (a call still verifying with it finishes first); a key that can't be read is skipped, not fatal.</item>
/// </list>
/// </summary>
internal sealed class IssuerKeyCache(Uri discoveryUrl, HttpClient http, IssuerKeySettings settings, TimeProvider time)
{
    private const int MinKeyBits = 2048;
    private readonly Lock _lock = new();
    private KeySet? _current;
    private KeySet? _retired;
    private Task<KeySet?>? _inflight;
    private DateTimeOffset _lastFailure = DateTimeOffset.MinValue;
    private DateTimeOffset _lastForcedRefresh = DateTimeOffset.MinValue;

    private sealed record KeySet(Dictionary<string, RSA> Keys, DateTimeOffset FetchedAt);

    /// <summary>How many fetches were started (tests: single-flight and failure backoff).</summary>
    public int Fetches { get; private set; }

    /// <summary>Keys held, in the current and the retired set (tests: the cache stays bounded).</summary>
    public int HeldKeys
    {
        get
        {
            lock (_lock)
            {
                return (_current?.Keys.Count ?? 0) + (_retired?.Keys.Count ?? 0);
            }
        }
    }

    /// <summary>The key for <paramref name="kid"/>, or null when the issuer does not publish it.</summary>
    /// <exception cref="KeysUnavailableException">No usable keys: none fetched yet, or past the grace period, and the issuer can't be reached.</exception>
    /// <remarks>A <see cref="ValueTask{TResult}"/>: nearly every call is answered from the held keys, without a task.</remarks>
    public async ValueTask<RSA?> FindAsync(string kid, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var current = Volatile.Read(ref _current);
        if (current is null || now - current.FetchedAt >= settings.CacheDuration + settings.GracePeriod)
        {
            // Nothing usable held: this call has to wait for the keys.
            current = await RefreshAsync(cancellationToken).ConfigureAwait(false)
                ?? throw new KeysUnavailableException($"The signing keys of {discoveryUrl.GetLeftPart(UriPartial.Authority)} could not be fetched.");
        }
        else if (now - current.FetchedAt >= settings.CacheDuration)
        {
            _ = RefreshAsync(CancellationToken.None); // stale: serve what is held, refresh in the background
        }

        if (current.Keys.TryGetValue(kid, out var key))
        {
            return key;
        }

        // Perhaps rotated: refresh, but at most once per interval however many unknown kids arrive.
        lock (_lock)
        {
            if (now - _lastForcedRefresh < settings.RefreshInterval)
            {
                return null;
            }

            _lastForcedRefresh = now;
        }

        var refreshed = await RefreshAsync(cancellationToken).ConfigureAwait(false);
        return refreshed?.Keys.GetValueOrDefault(kid);
    }

    /// <summary>The fetch in flight, or a new one unless one failed moments ago; null when it fails.</summary>
    private Task<KeySet?> RefreshAsync(CancellationToken cancellationToken)
    {
        Task<KeySet?> fetch;
        lock (_lock)
        {
            if (_inflight is null)
            {
                if (time.GetUtcNow() - _lastFailure < settings.FailureBackoff)
                {
                    return Task.FromResult<KeySet?>(null);
                }

                Fetches++;
                _inflight = FetchAndStoreAsync();
            }

            fetch = _inflight;
        }

        return fetch.WaitAsync(cancellationToken);
    }

    private async Task<KeySet?> FetchAndStoreAsync()
    {
        await Task.Yield(); // the caller holds the lock
        KeySet? fetched = null;
        try
        {
            using var timeout = new CancellationTokenSource(settings.FetchTimeout, time);
            var keys = await FetchKeysAsync(timeout.Token).ConfigureAwait(false);
            fetched = new KeySet(keys, time.GetUtcNow());
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or JsonException or IOException or InvalidOperationException or UriFormatException)
        {
            // Remembered below; the held keys (if any) keep serving.
        }

        lock (_lock)
        {
            _inflight = null;
            if (fetched is null)
            {
                _lastFailure = time.GetUtcNow();
                return null;
            }

            // The set replaced now is disposed at the next replacement: calls verifying with it have long finished.
            Dispose(_retired);
            _retired = _current;
            Volatile.Write(ref _current, fetched);
            return fetched;
        }
    }

    private async Task<Dictionary<string, RSA>> FetchKeysAsync(CancellationToken cancellationToken)
    {
        using var discovery = await GetJsonAsync(discoveryUrl, cancellationToken).ConfigureAwait(false);
        if (!discovery.RootElement.TryGetProperty("jwks_uri", out var jwksUri) || jwksUri.ValueKind != JsonValueKind.String
            || !Uri.TryCreate(jwksUri.GetString(), UriKind.Absolute, out var jwks)
            || (jwks.Scheme != Uri.UriSchemeHttps && !(jwks.Scheme == Uri.UriSchemeHttp && discoveryUrl.Scheme == Uri.UriSchemeHttp)))
        {
            throw new InvalidOperationException("The discovery document has no usable jwks_uri.");
        }

        using var set = await GetJsonAsync(jwks, cancellationToken).ConfigureAwait(false);
        var keys = new Dictionary<string, RSA>(StringComparer.Ordinal);
        if (set.RootElement.ValueKind != JsonValueKind.Object || !set.RootElement.TryGetProperty("keys", out var list) || list.ValueKind != JsonValueKind.Array)
        {
            throw new InvalidOperationException("The JWKS has no 'keys' array.");
        }

        foreach (var jwk in list.EnumerateArray())
        {
            if (keys.Count >= IssuerKeySettings.MaxKeys)
            {
                break;
            }

            if (TryReadRsaKey(jwk, out var kid, out var rsa) && !keys.TryAdd(kid, rsa))
            {
                rsa.Dispose(); // a kid given twice: the first one stands
            }
        }

        return keys;
    }

    /// <summary>An RS256 signing key of at least 2048 bits; anything else (or anything unreadable) is skipped.</summary>
    private static bool TryReadRsaKey(JsonElement jwk, out string kid, out RSA rsa)
    {
        kid = string.Empty;
        rsa = null!;
        try
        {
            if (jwk.ValueKind != JsonValueKind.Object
                || Text(jwk, "kty") != "RSA"
                || Text(jwk, "kid") is not { Length: > 0 } id
                || Text(jwk, "use") is { Length: > 0 } and not "sig"
                || Text(jwk, "alg") is { Length: > 0 } and not "RS256"
                || Text(jwk, "n") is not { Length: > 0 } n
                || Text(jwk, "e") is not { Length: > 0 } e)
            {
                return false;
            }

            var key = RSA.Create();
            try
            {
                key.ImportParameters(new RSAParameters { Modulus = Base64Url.DecodeFromChars(n), Exponent = Base64Url.DecodeFromChars(e) });
                if (key.KeySize < MinKeyBits)
                {
                    key.Dispose();
                    return false;
                }
            }
            catch
            {
                key.Dispose();
                throw;
            }

            (kid, rsa) = (id, key);
            return true;
        }
        catch (Exception ex) when (ex is FormatException or CryptographicException or InvalidOperationException)
        {
            return false; // one bad key is skipped; the others still serve
        }
    }

    private static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private async Task<JsonDocument> GetJsonAsync(Uri url, CancellationToken cancellationToken)
    {
        using var response = await http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        response.EnsureSuccessStatusCode();
        if (response.Content.Headers.ContentLength > IssuerKeySettings.MaxDocumentBytes)
        {
            throw new InvalidOperationException($"{url} is over {IssuerKeySettings.MaxDocumentBytes} bytes.");
        }

        var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            var body = await BoundedBody.ReadAsync(stream, response.Content.Headers.ContentLength, IssuerKeySettings.MaxDocumentBytes, cancellationToken).ConfigureAwait(false)
                ?? throw new InvalidOperationException($"{url} is over {IssuerKeySettings.MaxDocumentBytes} bytes.");
            return JsonDocument.Parse(body);
        }
    }

    private static void Dispose(KeySet? set)
    {
        foreach (var key in set?.Keys.Values ?? Enumerable.Empty<RSA>())
        {
            key.Dispose();
        }
    }
}
