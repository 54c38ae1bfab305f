using Bridge.Core.Callback;
using Bridge.Core.Forwarding;
using Bridge.Core.Internal;
using Bridge.Core.Routing;
using Bridge.Hosting.Internal;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace Bridge.Hosting;

/// <summary>
/// Bridge's HTTP surface, once for both hosts: the runner maps these handlers with minimal APIs, the function app's
/// functions call them and return their <see cref="IResult"/>. Paths are relative to the <c>api/</c> prefix.
/// </summary>
public sealed class BridgeEndpoints
{
    public const string RoutePrefix = "api";

    /// <summary><c>POST api/events/{route}</c>: HTTP and CloudEvents intake.</summary>
    public const string EventsRoute = "events/{route}";

    /// <summary><c>POST api/tasks/callback</c>: Cloud Tasks dispatches and outcome reports.</summary>
    public const string CallbackRoute = "tasks/callback";

    /// <summary><c>GET api/health</c>: anonymous, healthy or not only.</summary>
    public const string HealthRoute = "health";

    /// <summary><c>GET api/health/details</c>: with the route names; authenticated (function key, or the runner's intake authentication).</summary>
    public const string HealthDetailsRoute = "health/details";

    private readonly HttpIntake _intake;
    private readonly IEventForwarder _forwarder;
    private readonly RouteTable _routes;
    private readonly CallbackReceiver _receiver;
    private readonly int _maxEventBytes;
    private readonly int _maxCallbackBytes;
    private readonly HttpRetryAfter _retryAfter;

    internal BridgeEndpoints(HttpIntake intake, IEventForwarder forwarder, RouteTable routes, CallbackReceiver receiver, IOptions<BridgeOptions> options, IOptions<CallbackOptions> callbackOptions, HttpRetryAfter retryAfter)
    {
        _intake = intake;
        _forwarder = forwarder;
        _routes = routes;
        _receiver = receiver;
        _maxEventBytes = options.Value.MaxBodyBytes;
        _maxCallbackBytes = callbackOptions.Value.MaxBodyBytes;
        _retryAfter = retryAfter;
    }

    /// <summary>
    /// Maps the request to an event and forwards it: 202 with the task; problem details with the reason for bad
    /// events; 503 with a Retry-After that grows with the route's consecutive failures when Cloud Tasks is unavailable.
    /// </summary>
    public async Task<IResult> ForwardEventAsync(HttpRequest request, string route)
    {
        ArgumentNullException.ThrowIfNull(request);
        try
        {
            var body = await HttpRequests.ReadBodyAsync(request, _maxEventBytes).ConfigureAwait(false)
                ?? throw ForwardingProblems.BodyTooLarge(_maxEventBytes);
            var result = await _forwarder.ForwardAsync(_intake.Map(route, HttpRequests.Headers(request), body, request.ContentType), request.HttpContext.RequestAborted).ConfigureAwait(false);
            _retryAfter.Succeeded(route);
            return Answers.Accepted(result);
        }
        catch (ForwardingException ex)
        {
            return Answers.Problem(ex, _retryAfter.Failed(route, ex));
        }
    }

    /// <summary>
    /// Verifies and settles a callback: 200 with the outcome id, or the refusal's status and reason. The body is read
    /// only once the token is verified.
    /// </summary>
    public async Task<IResult> ReceiveCallbackAsync(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var response = await _receiver.HandleAsync(
            HttpRequests.Headers(request),
            request.ContentType,
            async _ => await HttpRequests.ReadBodyAsync(request, _maxCallbackBytes).ConfigureAwait(false) is { } body ? body : null,
            request.HttpContext.RequestAborted).ConfigureAwait(false);
        return Answers.Callback(response);
    }

    /// <summary>The app is up and its configuration validated (it would not have started otherwise); no details.</summary>
    public IResult Health() => Answers.Health();

    /// <summary>As <see cref="Health"/>, with the route names: only behind authentication.</summary>
    public IResult HealthDetails() => Answers.HealthDetails(_routes);
}
