using Bridge.CloudTasks.V2Beta3;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>A queue's <c>http_target.uri_override</c> applied to a task's URL, part by part.</summary>
internal static class UriOverrides
{
    /// <summary>
    /// The URL a task is sent to. Without an override it is the task's URL exactly as given. ALWAYS (the default)
    /// replaces every part the override sets; IF_NOT_EXISTS fills only the parts the task's URL lacks. A scheme
    /// override keeps an explicit port; port 0 clears the port; an empty path or query clears it.
    /// </summary>
    public static string Apply(string url, UriOverride? uriOverride)
    {
        if (uriOverride is null)
        {
            return url;
        }

        var given = string.IsNullOrEmpty(url) ? null : new Uri(url, UriKind.Absolute);
        var onlyIfMissing = uriOverride.UriOverrideEnforceMode == UriOverride.Types.UriOverrideEnforceMode.IfNotExists;
        var scheme = given?.Scheme ?? Uri.UriSchemeHttps;
        var host = given?.Host ?? "localhost";
        int? port = given is { IsDefaultPort: false } ? given.Port : null;
        var path = given?.AbsolutePath ?? "/";
        var query = given is { Query.Length: > 1 } ? given.Query[1..] : string.Empty;

        if (uriOverride.HasScheme && uriOverride.Scheme != UriOverride.Types.Scheme.Unspecified && (!onlyIfMissing || given is null))
        {
            scheme = uriOverride.Scheme == UriOverride.Types.Scheme.Http ? Uri.UriSchemeHttp : Uri.UriSchemeHttps;
        }

        if (uriOverride.HasHost && (!onlyIfMissing || given is null))
        {
            host = uriOverride.Host;
        }

        if (uriOverride.HasPort && (!onlyIfMissing || port is null))
        {
            port = uriOverride.Port == 0 ? null : (int)uriOverride.Port;
        }

        if (uriOverride.PathOverride is { } pathOverride && (!onlyIfMissing || path == "/"))
        {
            path = pathOverride.Path.StartsWith('/') ? pathOverride.Path : "/" + pathOverride.Path;
        }

        if (uriOverride.QueryOverride is { } queryOverride && (!onlyIfMissing || query.Length == 0))
        {
            query = queryOverride.QueryParams.TrimStart('?');
        }

        var authority = port is { } p ? $"{host}:{p}" : host;
        return query.Length > 0 ? $"{scheme}://{authority}{path}?{query}" : $"{scheme}://{authority}{path}";
    }
}
