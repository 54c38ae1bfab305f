using Bridge.CloudTasks;
using Bridge.Core.Callback;
using Bridge.Core.Routing;

namespace Bridge.Core.Internal;

/// <summary>Why a verified caller may not make the call it made; the name is the answer's reason and the metric's tag.</summary>
internal enum CallbackRefusal
{
    /// <summary>A dispatch for a queue that no route targeting this callback uses.</summary>
    QueueNotRoutedHere,

    /// <summary>A dispatch signed by another account than the one the route's tasks are signed as.</summary>
    NotTheRouteServiceAccount,

    /// <summary>A dispatch whose token was minted for another audience than its route's (another route's, for instance).</summary>
    NotTheRouteAudience,

    /// <summary>A report for a task in a queue of no route.</summary>
    TaskOfNoRoute,

    /// <summary>A report from an account the route does not allow to report.</summary>
    NotAllowedToReport,
}

/// <summary>
/// Who may make which call, from the routes. A dispatch-style call (X-CloudTasks-* headers) is accepted only for the
/// queue of a route whose tasks target this callback, and only from the account those tasks are signed as; a report
/// only for a task in a route's queue, and only from an account that route lists in
/// <see cref="RouteOptions.ReportingServiceAccounts"/>. The token proved who the caller is; this decides what that
/// caller may do, so task, queue and route named by the caller can't widen it.
/// </summary>
internal sealed class CallbackAuthorization
{
    private readonly Route[] _routes;
    private readonly HashSet<string> _callbackAudiences;

    // The routes whose tasks call this callback, by queue id, in route order, with what a dispatch is checked
    // against worked out once: a dispatch is authorized without allocating.
    private readonly Dictionary<string, DispatchRoute[]> _dispatchRoutes;

    public CallbackAuthorization(RouteTable routes, CallbackOptions options)
    {
        _routes = routes.All.ToArray();
        _callbackAudiences = new HashSet<string>(options.EffectiveAudiences, StringComparer.Ordinal);
        _dispatchRoutes = _routes.Where(TargetsCallback)
            .GroupBy(r => r.Queue.QueueId, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Select(r => new DispatchRoute(r, AudienceOf(r), r.Queue.ToString())).ToArray(), StringComparer.Ordinal);
    }

    /// <summary>Whether the route's tasks call this callback: their token's audience is one the callback accepts.</summary>
    public bool TargetsCallback(Route route) =>
        !string.IsNullOrEmpty(route.Options.ServiceAccountEmail) && _callbackAudiences.Contains(AudienceOf(route));

    /// <summary>The audience the route's task tokens are minted for.</summary>
    private static string AudienceOf(Route route) => string.IsNullOrEmpty(route.Options.Audience) ? route.Options.TargetUrl : route.Options.Audience;

    /// <summary>
    /// The route of a dispatch of a task in queue <paramref name="queueId"/>, if <paramref name="caller"/> may make it
    /// with a token for <paramref name="audiences"/>: the route's own audience, not only one the callback accepts.
    /// Among the queue's routes: the one the bridge stamped on the task (<paramref name="routeName"/>) when it is one of
    /// them; those signed as the caller, else those signed as the caller before a rotation; the first of these whose
    /// audience the token carries.
    /// </summary>
    public CallbackRefusal? AuthorizeDispatch(string caller, IReadOnlyList<string> audiences, string queueId, string? routeName, out DispatchRoute? route)
    {
        route = null;
        if (!_dispatchRoutes.TryGetValue(queueId, out var all))
        {
            return CallbackRefusal.QueueNotRoutedHere;
        }

        ReadOnlySpan<DispatchRoute> candidates = all;
        if (!string.IsNullOrEmpty(routeName))
        {
            for (var i = 0; i < all.Length; i++)
            {
                if (string.Equals(all[i].Route.Name, routeName, StringComparison.OrdinalIgnoreCase))
                {
                    candidates = all.AsSpan(i, 1);
                    break;
                }
            }
        }

        var current = false;
        foreach (var candidate in candidates)
        {
            current |= string.Equals(candidate.Route.Options.ServiceAccountEmail, caller, StringComparison.OrdinalIgnoreCase);
        }

        var signedAsCaller = false;
        foreach (var candidate in candidates)
        {
            if (current ? !string.Equals(candidate.Route.Options.ServiceAccountEmail, caller, StringComparison.OrdinalIgnoreCase) : !ContainsIgnoreCase(candidate.Route.Options.PreviousServiceAccounts, caller))
            {
                continue;
            }

            signedAsCaller = true;
            if (ContainsOrdinal(audiences, candidate.Audience))
            {
                route = candidate;
                return null;
            }
        }

        return signedAsCaller ? CallbackRefusal.NotTheRouteAudience : CallbackRefusal.NotTheRouteServiceAccount;
    }

    private static bool ContainsIgnoreCase(List<string> values, string value)
    {
        foreach (var item in values)
        {
            if (string.Equals(item, value, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    private static bool ContainsOrdinal(IReadOnlyList<string> values, string value)
    {
        for (var i = 0; i < values.Count; i++)
        {
            if (string.Equals(values[i], value, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The route of a report on <paramref name="task"/>, if <paramref name="caller"/> may make it.</summary>
    public CallbackRefusal? AuthorizeReport(string caller, TaskName task, out Route? route)
    {
        route = null;
        var queue = task.Queue;
        var candidates = _routes.Where(r => r.Queue == queue).ToList();
        if (candidates.Count == 0)
        {
            return CallbackRefusal.TaskOfNoRoute;
        }

        route = candidates.Find(r => r.Options.ReportingServiceAccounts.Contains(caller, StringComparer.OrdinalIgnoreCase));
        return route is null ? CallbackRefusal.NotAllowedToReport : null;
    }
}

/// <summary>A route whose tasks call this callback, with the audience its tokens carry and its queue's full name.</summary>
internal sealed record DispatchRoute(Route Route, string Audience, string QueueName);
