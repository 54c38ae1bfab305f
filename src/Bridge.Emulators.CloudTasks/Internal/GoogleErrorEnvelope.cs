using System.Text.Json;
using System.Text.Json.Nodes;
using Grpc.Core;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// REST errors as Google's APIs write them: <c>{"error": {"code": &lt;HTTP status&gt;, "message", "status": "NOT_FOUND",
/// "details"}}</c>, the HTTP status mapped from the gRPC code. JSON transcoding writes a bare <c>google.rpc.Status</c>
/// (<c>{"code": 5, …}</c>), which Google's REST clients (gax's REST transport, gcloud) read as UNKNOWN.
/// </summary>
internal static class GoogleErrorEnvelope
{
    /// <summary>Google's mapping (google/rpc/code.proto).</summary>
    public static int HttpStatusFor(StatusCode code) => code switch
    {
        StatusCode.OK => 200,
        StatusCode.Cancelled => 499,
        StatusCode.InvalidArgument or StatusCode.FailedPrecondition or StatusCode.OutOfRange => 400,
        StatusCode.DeadlineExceeded => 504,
        StatusCode.NotFound => 404,
        StatusCode.AlreadyExists or StatusCode.Aborted => 409,
        StatusCode.PermissionDenied => 403,
        StatusCode.Unauthenticated => 401,
        StatusCode.ResourceExhausted => 429,
        StatusCode.Unimplemented => 501,
        StatusCode.Unavailable => 503,
        _ => 500,
    };

    /// <summary>The canonical name: ALREADY_EXISTS, NOT_FOUND, …</summary>
    public static string StatusName(StatusCode code) => code switch
    {
        StatusCode.OK => "OK",
        StatusCode.Cancelled => "CANCELLED",
        StatusCode.Unknown => "UNKNOWN",
        StatusCode.InvalidArgument => "INVALID_ARGUMENT",
        StatusCode.DeadlineExceeded => "DEADLINE_EXCEEDED",
        StatusCode.NotFound => "NOT_FOUND",
        StatusCode.AlreadyExists => "ALREADY_EXISTS",
        StatusCode.PermissionDenied => "PERMISSION_DENIED",
        StatusCode.Unauthenticated => "UNAUTHENTICATED",
        StatusCode.ResourceExhausted => "RESOURCE_EXHAUSTED",
        StatusCode.FailedPrecondition => "FAILED_PRECONDITION",
        StatusCode.Aborted => "ABORTED",
        StatusCode.OutOfRange => "OUT_OF_RANGE",
        StatusCode.Unimplemented => "UNIMPLEMENTED",
        StatusCode.Internal => "INTERNAL",
        StatusCode.Unavailable => "UNAVAILABLE",
        StatusCode.DataLoss => "DATA_LOSS",
        _ => "UNKNOWN",
    };

    /// <summary>
    /// Rewrites a transcoded <c>google.rpc.Status</c> body into the envelope; null when the body is not one (then
    /// it is passed on as it is).
    /// </summary>
    public static (int HttpStatus, byte[] Body)? Rewrite(ReadOnlySpan<byte> body)
    {
        JsonNode? status;
        try
        {
            status = JsonNode.Parse(body);
        }
        catch (JsonException)
        {
            return null;
        }

        if (status is not JsonObject obj || obj["code"] is not JsonValue codeValue || !codeValue.TryGetValue<int>(out var rawCode) || obj.ContainsKey("error"))
        {
            return null;
        }

        var code = (StatusCode)rawCode;
        var http = HttpStatusFor(code);
        var details = obj["details"]?.DeepClone() as JsonArray ?? [];
        var envelope = new JsonObject
        {
            ["error"] = new JsonObject
            {
                ["code"] = http,
                ["message"] = obj["message"]?.GetValue<string>() ?? string.Empty,
                ["status"] = StatusName(code),
                ["details"] = details,
            },
        };
        return (http, JsonSerializer.SerializeToUtf8Bytes(envelope));
    }
}

/// <summary>Applies <see cref="GoogleErrorEnvelope"/> to error answers of the REST routes; success bodies stream through untouched.</summary>
internal sealed class GoogleErrorEnvelopeMiddleware(RequestDelegate next)
{
    public async Task InvokeAsync(HttpContext context)
    {
        if (!IsRestRoute(context.Request.Path))
        {
            await next(context);
            return;
        }

        var original = context.Response.Body;
        await using var capture = new ErrorCaptureStream(original, context.Response);
        context.Response.Body = capture;
        try
        {
            await next(context);
        }
        finally
        {
            context.Response.Body = original;
        }

        if (capture.Captured is { } captured)
        {
            if (GoogleErrorEnvelope.Rewrite(captured.GetBuffer().AsSpan(0, (int)captured.Length)) is { } rewritten)
            {
                context.Response.StatusCode = rewritten.HttpStatus;
                context.Response.ContentLength = rewritten.Body.Length;
                context.Response.ContentType = "application/json; charset=utf-8";
                await original.WriteAsync(rewritten.Body, context.RequestAborted);
            }
            else
            {
                context.Response.ContentLength = captured.Length;
                captured.Position = 0;
                await captured.CopyToAsync(original, context.RequestAborted);
            }
        }
    }

    internal static bool IsRestRoute(PathString path) =>
        path.StartsWithSegments("/v2beta3", StringComparison.Ordinal) || path.StartsWithSegments("/v2", StringComparison.Ordinal);

    /// <summary>Passes writes through unless the status is an error when the first write comes; then keeps them.</summary>
    private sealed class ErrorCaptureStream(Stream inner, HttpResponse response) : Stream
    {
        /// <summary>Errors are a few kilobytes at most (a message and field violations).</summary>
        private const int MaxErrorBytes = 1 << 20;
        private bool? _capturing;

        public MemoryStream? Captured { get; private set; }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush()
        {
            if (_capturing != true)
            {
                inner.Flush();
            }
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => _capturing == true ? Task.CompletedTask : inner.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => Target(count).Write(buffer, offset, count);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => Target(buffer.Length).WriteAsync(buffer, cancellationToken);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Target(count).WriteAsync(buffer, offset, count, cancellationToken);

        private Stream Target(int count)
        {
            if (_capturing is null)
            {
                _capturing = response.StatusCode >= 400 && !response.HasStarted;
                if (_capturing == true)
                {
                    Captured = new MemoryStream();
                }
            }

            if (_capturing == true && Captured!.Length + count > MaxErrorBytes)
            {
                throw new InvalidOperationException("An error body above 1 MiB; not an error the emulator writes.");
            }

            return _capturing == true ? Captured! : inner;
        }
    }
}
