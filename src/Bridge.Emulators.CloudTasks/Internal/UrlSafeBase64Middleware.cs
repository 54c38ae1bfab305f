using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// Google's REST front ends read a bytes field in either base64 alphabet; gcloud (apitools) writes the URL-safe
/// one, so <c>gcloud tasks queues add-iam-policy-binding</c> sends back the policy's etag with '-' and '_'. The JSON
/// transcoder only reads the standard alphabet, so the REST request's bytes fields (policy etag, task bodies, pull
/// payloads, and each task's of a <c>:batchCreate</c>) are rewritten to it first. Nothing else in the body changes; a value that is not base64 in either
/// alphabet is left for the transcoder to refuse.
/// </summary>
internal sealed class UrlSafeBase64Middleware(RequestDelegate next)
{
    private const int MaxRewriteBytes = 4 << 20;

    /// <summary>Where bytes fields sit; <c>*</c> is every element of an array (a batch's requests).</summary>
    private static readonly string[][] BytesFields =
    [
        ["policy", "etag"],
        .. TaskBytesFields([]),
        .. TaskBytesFields(["requests", "*"]),
    ];

    private static IEnumerable<string[]> TaskBytesFields(string[] prefix) =>
        new[]
        {
            new[] { "task", "httpRequest", "body" }, ["task", "http_request", "body"],
            ["task", "appEngineHttpRequest", "body"], ["task", "app_engine_http_request", "body"],
            ["task", "pullMessage", "payload"], ["task", "pull_message", "payload"],
        }.Select(path => (string[])[.. prefix, .. path]);

    public async Task InvokeAsync(HttpContext context)
    {
        var request = context.Request;
        if ((HttpMethods.IsPost(request.Method) || HttpMethods.IsPatch(request.Method))
            && GoogleErrorEnvelopeMiddleware.IsRestRoute(request.Path)
            && request.ContentType?.Contains("json", StringComparison.OrdinalIgnoreCase) == true
            && request.ContentLength is null or <= MaxRewriteBytes)
        {
            await RewriteAsync(request, context.RequestAborted);
        }

        await next(context);
    }

    private static async Task RewriteAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        request.EnableBuffering(bufferThreshold: 64 * 1024, bufferLimit: MaxRewriteBytes + 1);
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            buffer.Write(chunk, 0, read);
            if (buffer.Length > MaxRewriteBytes)
            {
                break;
            }
        }

        request.Body.Position = 0;
        if (buffer.Length > MaxRewriteBytes || Rewrite(buffer.GetBuffer().AsSpan(0, (int)buffer.Length)) is not { } rewritten)
        {
            return;
        }

        request.Body = new MemoryStream(rewritten, writable: false);
        request.ContentLength = rewritten.Length;
    }

    /// <summary>The body with its bytes fields in the standard alphabet, or null when nothing needed changing.</summary>
    internal static byte[]? Rewrite(ReadOnlySpan<byte> json)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json);
        }
        catch (JsonException)
        {
            return null; // the transcoder names the problem
        }

        var changed = false;
        foreach (var path in BytesFields)
        {
            changed |= RewriteAt(root, path);
        }

        return changed ? Encoding.UTF8.GetBytes(root!.ToJsonString()) : null;
    }

    /// <summary>Rewrites the bytes field at <paramref name="path"/> below <paramref name="node"/>; true when one changed.</summary>
    private static bool RewriteAt(JsonNode? node, ReadOnlySpan<string> path)
    {
        if (path.Length == 1)
        {
            if (node is JsonObject obj && obj[path[0]] is JsonValue value && value.TryGetValue<string>(out var text)
                && ToStandardBase64(text) is { } standard)
            {
                obj[path[0]] = standard;
                return true;
            }

            return false;
        }

        if (path[0] == "*")
        {
            var changed = false;
            if (node is JsonArray array)
            {
                foreach (var element in array)
                {
                    changed |= RewriteAt(element, path[1..]);
                }
            }

            return changed;
        }

        return node is JsonObject parent && RewriteAt(parent[path[0]], path[1..]);
    }

    private static string? ToStandardBase64(string text)
    {
        if (!text.Contains('-') && !text.Contains('_') && text.Length % 4 == 0)
        {
            return null;
        }

        var standard = new StringBuilder(text.Length + 3).Append(text).Replace('-', '+').Replace('_', '/');
        standard.Append('=', (4 - (standard.Length % 4)) % 4);
        var result = standard.ToString();
        return Convert.TryFromBase64String(result, new byte[result.Length], out _) ? result : null;
    }
}
