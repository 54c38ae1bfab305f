using Microsoft.AspNetCore.Http.Features;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// During an injected outage, API requests get no answer: an HTTP/2 (gRPC) stream is refused (REFUSED_STREAM,
/// which gRPC clients report as UNAVAILABLE, as for a refused connection), an HTTP/1.1 (REST) connection is dropped.
/// Admin, health and OIDC endpoints stay up.
/// </summary>
internal sealed class UnreachableMiddleware(RequestDelegate next, EmulatorFaults faults)
{
    private const int RefusedStream = 0x7;

    public Task InvokeAsync(HttpContext context)
    {
        if (!faults.IsUnreachable || !IsApiRequest(context.Request))
        {
            return next(context);
        }

        if (context.Features.Get<IHttpResetFeature>() is { } reset)
        {
            reset.Reset(RefusedStream);
        }
        else
        {
            context.Abort();
        }

        return Task.CompletedTask;
    }

    private static bool IsApiRequest(HttpRequest request) =>
        request.ContentType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) == true
        || GoogleErrorEnvelopeMiddleware.IsRestRoute(request.Path);
}
