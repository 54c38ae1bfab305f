using Bridge.Core.Internal;
using Microsoft.AspNetCore.Http;

namespace Bridge.Hosting.Internal;

/// <summary>The request as Core takes it: a bounded body and flat headers.</summary>
internal static class HttpRequests
{
    /// <summary>The body, or null when it exceeds <paramref name="limit"/> (read no further than that).</summary>
    public static Task<byte[]?> ReadBodyAsync(HttpRequest request, int limit) =>
        BoundedBody.ReadAsync(request.Body, request.ContentLength, limit, request.HttpContext.RequestAborted);

    public static Dictionary<string, string> Headers(HttpRequest request) =>
        request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase);
}
