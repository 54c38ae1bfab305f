using System.Collections.Concurrent;
using Bridge.Core.Forwarding;
using Bridge.Core.Routing;
using Bridge.Core.Telemetry;
using Microsoft.Extensions.Options;

namespace Bridge.Core.Internal;

/// <summary>
/// The Retry-After HTTP intake answers a failure worth waiting for with: the same growing delay as a Service Bus
/// hand-back, counted in consecutive failures of the route (a success starts over), or the service's own RetryInfo
/// when it asks for longer. An HTTP caller keeps no attempt count of its own, so the route keeps it.
/// </summary>
internal sealed class HttpRetryAfter(RouteTable routes, IOptions<BridgeOptions> options)
{
    private readonly BridgeOptions _options = options.Value.Clone();

    // Keyed by configured route names only, so its size is bounded by the configuration.
    private readonly ConcurrentDictionary<string, int> _consecutiveFailures = new(StringComparer.OrdinalIgnoreCase);

    public void Succeeded(string route) => _consecutiveFailures.TryRemove(route, out _);

    /// <summary>Seconds to wait (at least 1), or null for a permanent failure.</summary>
    public int? Failed(string route, ForwardingException error)
    {
        if (!error.IsTransient)
        {
            return null;
        }

        var failures = routes.TryFind(route, out var known) ? _consecutiveFailures.AddOrUpdate(known.Name, 1, (_, n) => n == int.MaxValue ? n : n + 1) : 1;
        var delay = ServiceBusHandBack.Delay(failures, _options, Random.Shared);
        if (error.RetryAfter is { } asked && asked > delay)
        {
            delay = asked;
        }

        BridgeDiagnostics.HttpRetryAfter.Add(1, new(BridgeDiagnostics.Tags.Route, known?.Name ?? string.Empty), new(BridgeDiagnostics.Tags.Reason, error.ReasonCode));
        return Math.Max(1, (int)Math.Ceiling(delay.TotalSeconds));
    }
}
