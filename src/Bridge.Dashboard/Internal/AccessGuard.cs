using System.Diagnostics;
using System.Net;
using Azure.Messaging.ServiceBus;
using Bridge.CloudTasks;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Dashboard.Internal;

/// <summary>
/// In front of every dashboard endpoint: loopback callers with a loopback Host only (a page elsewhere that resolves
/// its name to 127.0.0.1 gets nothing), unless the host's <see cref="DashboardOptions.AllowRemoteRequest"/> accepts
/// the request; anti-forgery on every POST; headers that keep the pages to themselves.
/// </summary>
internal sealed class AccessGuard(DashboardOptions options) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;

        // The dashboard's own requests are not journeys of events.
        if (Activity.Current is { } activity)
        {
            activity.SetTag(SpanStore.DashboardTag, true);
            http.RequestServices.GetRequiredService<DashboardState>().Spans.Ignore(activity.TraceId);
        }

        if (Refusal(http) is { } refusal)
        {
            return Results.Text(refusal, "text/plain; charset=utf-8", statusCode: StatusCodes.Status403Forbidden);
        }

        var headers = http.Response.Headers;
        headers.ContentSecurityPolicy = "default-src 'none'; style-src 'self'; style-src-attr 'unsafe-inline'; script-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        headers.CacheControl = "no-store";
        if (HttpMethods.IsPost(http.Request.Method))
        {
            if (http.Request.ContentLength is > QueuePages.MaxTestEventBytes * 2)
            {
                return Results.Text($"A dashboard form may send at most {QueuePages.MaxTestEventBytes * 2} bytes.", statusCode: StatusCodes.Status413PayloadTooLarge);
            }

            if (!http.Request.HasFormContentType)
            {
                return Results.Text("Dashboard actions are HTML forms: application/x-www-form-urlencoded or multipart/form-data.", statusCode: StatusCodes.Status415UnsupportedMediaType);
            }

            try
            {
                await http.RequestServices.GetRequiredService<IAntiforgery>().ValidateRequestAsync(http);
            }
            catch (AntiforgeryValidationException)
            {
                return Results.Text("The form's anti-forgery token is missing or invalid: reload the page and try again.", statusCode: StatusCodes.Status400BadRequest);
            }
        }

        try
        {
            return await next(context);
        }
        catch (CloudTasksException ex)
        {
            // Cloud Tasks (or the emulator) failed or refused: say so on a page, not as an unhandled 500.
            return Layout.Error(http, ex.IsTransient ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status502BadGateway, "Cloud Tasks did not answer",
                $"Cloud Tasks answered {ex.Reason}; reload to try again.");
        }
        catch (ServiceBusException ex)
        {
            return Layout.Error(http, ex.IsTransient ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status502BadGateway, "Service Bus did not answer",
                $"Service Bus answered {ex.Reason}; reload to try again.");
        }
    }

    internal string? Refusal(HttpContext http)
    {
        if (options.AllowRemoteRequest is { } allow && allow(http))
        {
            return null;
        }

        var remote = http.Connection.RemoteIpAddress;
        if (remote is null || !IPAddress.IsLoopback(remote.IsIPv4MappedToIPv6 ? remote.MapToIPv4() : remote))
        {
            return "The dashboard answers only on loopback (open it on this machine, http://localhost:<port>/); it opens to other callers once the host authenticates them.";
        }

        if (!IsLoopbackHost(http.Request.Host.Host))
        {
            return $"The dashboard answers only to Host localhost, 127.0.0.1 or [::1], not '{http.Request.Host.Host}'.";
        }

        return null;
    }

    private static bool IsLoopbackHost(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
        || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address));
}
