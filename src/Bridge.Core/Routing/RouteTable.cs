using System.Diagnostics.CodeAnalysis;
using Bridge.CloudTasks;

namespace Bridge.Core.Routing;

/// <summary>A route ready to use: its name, resolved queue and settings.</summary>
public sealed record Route(string Name, QueueName Queue, RouteOptions Options);

/// <summary>Finds the route of an event: by name (HTTP path), or by Service Bus entity, route property and Subject.</summary>
public sealed class RouteTable
{
    private readonly Dictionary<string, Route> _routes;
    private readonly string? _defaultRoute;

    public RouteTable(BridgeOptions options)
    {
        _routes = new Dictionary<string, Route>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, route) in options.Routes)
        {
            if (!TryResolveQueue(route.Queue, options, out var queue, out var error))
            {
                throw new InvalidOperationException($"{BridgeOptions.SectionName}:Routes:{name}:Queue: {error}");
            }

            _routes[name] = new Route(name, queue, route.Clone());
        }

        _defaultRoute = string.IsNullOrEmpty(options.DefaultRoute) ? null : options.DefaultRoute;
    }

    public IReadOnlyCollection<Route> All => _routes.Values;

    /// <summary>The route named <paramref name="name"/>, or the default route when the name is empty.</summary>
    public bool TryFind(string? name, [NotNullWhen(true)] out Route? route)
    {
        route = null;
        var key = string.IsNullOrEmpty(name) ? _defaultRoute : name;
        return key is not null && _routes.TryGetValue(key, out route);
    }

    /// <summary>
    /// A Service Bus message's route: the one its route property names; else the route on its entity whose Subject
    /// matches; else the entity's route without a Subject; else the default route.
    /// </summary>
    public bool TryFindForServiceBus(string entity, string? subject, string? routeProperty, [NotNullWhen(true)] out Route? route)
    {
        if (!string.IsNullOrEmpty(routeProperty))
        {
            return TryFind(routeProperty, out route);
        }

        var onEntity = _routes.Values.Where(r => string.Equals(r.Options.ServiceBusEntity, entity, StringComparison.OrdinalIgnoreCase)).ToList();
        route = onEntity.FirstOrDefault(r => !string.IsNullOrEmpty(subject) && string.Equals(r.Options.ServiceBusSubject, subject, StringComparison.Ordinal))
            ?? onEntity.FirstOrDefault(r => string.IsNullOrEmpty(r.Options.ServiceBusSubject));
        return route is not null || TryFind(null, out route);
    }

    internal static bool TryResolveQueue(string value, BridgeOptions options, [NotNullWhen(true)] out QueueName? queue, out string error)
    {
        queue = null;
        error = string.Empty;
        if (value.Contains('/', StringComparison.Ordinal))
        {
            if (QueueName.TryParse(value, out queue))
            {
                return true;
            }

            try
            {
                QueueName.Parse(value);
            }
            catch (FormatException ex)
            {
                error = ex.Message;
            }

            return false;
        }

        if (string.IsNullOrEmpty(options.Project) || string.IsNullOrEmpty(options.Location))
        {
            error = $"a bare queue id needs {BridgeOptions.SectionName}:Project and {BridgeOptions.SectionName}:Location.";
            return false;
        }

        try
        {
            queue = new QueueName(options.Project, options.Location, value);
            return true;
        }
        catch (ArgumentException ex)
        {
            error = ex.Message;
            return false;
        }
    }
}
