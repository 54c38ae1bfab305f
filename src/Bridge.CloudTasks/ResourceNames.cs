using System.Diagnostics.CodeAnalysis;
using Bridge.CloudTasks.Internal;

namespace Bridge.CloudTasks;

/// <summary>A Cloud Tasks location: <c>projects/{project}/locations/{location}</c>.</summary>
public sealed record LocationName
{
    public LocationName(string projectId, string locationId)
    {
        ProjectId = ResourceIdRules.RequireProjectId(projectId);
        LocationId = ResourceIdRules.RequireLocationId(locationId);
    }

    public string ProjectId { get; }

    public string LocationId { get; }

    public static LocationName Parse(string name) =>
        TryParse(name, out var result, out var error) ? result : throw new FormatException(error);

    public static bool TryParse(string? name, [NotNullWhen(true)] out LocationName? result) =>
        TryParse(name, out result, out _);

    private static bool TryParse(string? name, [NotNullWhen(true)] out LocationName? result, out string error)
    {
        result = null;
        if (!ResourceIdRules.TrySplit(name, ["projects", "locations"], "projects/{project}/locations/{location}", out var ids, out error)
            || !ResourceIdRules.TryValidateProjectId(ids[0], out error)
            || !ResourceIdRules.TryValidateLocationId(ids[1], out error))
        {
            return false;
        }

        result = new LocationName(ids[0], ids[1]);
        return true;
    }

    public QueueName Queue(string queueId) => new(ProjectId, LocationId, queueId);

    public OperationName Operation(string operationId) => new(ProjectId, LocationId, operationId);

    public override string ToString() => $"projects/{ProjectId}/locations/{LocationId}";
}

/// <summary>A Cloud Tasks queue: <c>projects/{project}/locations/{location}/queues/{queue}</c>.</summary>
public sealed record QueueName
{
    public QueueName(string projectId, string locationId, string queueId)
    {
        ProjectId = ResourceIdRules.RequireProjectId(projectId);
        LocationId = ResourceIdRules.RequireLocationId(locationId);
        QueueId = ResourceIdRules.RequireQueueId(queueId);
    }

    public string ProjectId { get; }

    public string LocationId { get; }

    public string QueueId { get; }

    public LocationName Location => new(ProjectId, LocationId);

    public static QueueName Parse(string name) =>
        TryParse(name, out var result, out var error) ? result : throw new FormatException(error);

    public static bool TryParse(string? name, [NotNullWhen(true)] out QueueName? result) =>
        TryParse(name, out result, out _);

    private static bool TryParse(string? name, [NotNullWhen(true)] out QueueName? result, out string error)
    {
        result = null;
        if (!ResourceIdRules.TrySplit(name, ["projects", "locations", "queues"], "projects/{project}/locations/{location}/queues/{queue}", out var ids, out error)
            || !ResourceIdRules.TryValidateProjectId(ids[0], out error)
            || !ResourceIdRules.TryValidateLocationId(ids[1], out error)
            || !ResourceIdRules.TryValidateQueueId(ids[2], out error))
        {
            return false;
        }

        result = new QueueName(ids[0], ids[1], ids[2]);
        return true;
    }

    public TaskName Task(string taskId) => new(ProjectId, LocationId, QueueId, taskId);

    public override string ToString() => $"projects/{ProjectId}/locations/{LocationId}/queues/{QueueId}";
}

/// <summary>A Cloud Tasks task: <c>projects/{project}/locations/{location}/queues/{queue}/tasks/{task}</c>.</summary>
public sealed record TaskName
{
    public TaskName(string projectId, string locationId, string queueId, string taskId)
    {
        ProjectId = ResourceIdRules.RequireProjectId(projectId);
        LocationId = ResourceIdRules.RequireLocationId(locationId);
        QueueId = ResourceIdRules.RequireQueueId(queueId);
        TaskId = ResourceIdRules.RequireTaskId(taskId);
    }

    public string ProjectId { get; }

    public string LocationId { get; }

    public string QueueId { get; }

    public string TaskId { get; }

    public QueueName Queue => new(ProjectId, LocationId, QueueId);

    public static TaskName Parse(string name) =>
        TryParse(name, out var result, out var error) ? result : throw new FormatException(error);

    public static bool TryParse(string? name, [NotNullWhen(true)] out TaskName? result) =>
        TryParse(name, out result, out _);

    private static bool TryParse(string? name, [NotNullWhen(true)] out TaskName? result, out string error)
    {
        result = null;
        if (!ResourceIdRules.TrySplit(name, ["projects", "locations", "queues", "tasks"], "projects/{project}/locations/{location}/queues/{queue}/tasks/{task}", out var ids, out error)
            || !ResourceIdRules.TryValidateProjectId(ids[0], out error)
            || !ResourceIdRules.TryValidateLocationId(ids[1], out error)
            || !ResourceIdRules.TryValidateQueueId(ids[2], out error)
            || !ResourceIdRules.TryValidateTaskId(ids[3], out error))
        {
            return false;
        }

        result = new TaskName(ids[0], ids[1], ids[2], ids[3]);
        return true;
    }

    public override string ToString() => $"projects/{ProjectId}/locations/{LocationId}/queues/{QueueId}/tasks/{TaskId}";
}

/// <summary>A long-running operation: <c>projects/{project}/locations/{location}/operations/{operation}</c>.</summary>
public sealed record OperationName
{
    public OperationName(string projectId, string locationId, string operationId)
    {
        ProjectId = ResourceIdRules.RequireProjectId(projectId);
        LocationId = ResourceIdRules.RequireLocationId(locationId);
        OperationId = ResourceIdRules.RequireOperationId(operationId);
    }

    public string ProjectId { get; }

    public string LocationId { get; }

    public string OperationId { get; }

    public LocationName Location => new(ProjectId, LocationId);

    public static OperationName Parse(string name) =>
        TryParse(name, out var result, out var error) ? result : throw new FormatException(error);

    public static bool TryParse(string? name, [NotNullWhen(true)] out OperationName? result) =>
        TryParse(name, out result, out _);

    private static bool TryParse(string? name, [NotNullWhen(true)] out OperationName? result, out string error)
    {
        result = null;
        if (!ResourceIdRules.TrySplit(name, ["projects", "locations", "operations"], "projects/{project}/locations/{location}/operations/{operation}", out var ids, out error)
            || !ResourceIdRules.TryValidateProjectId(ids[0], out error)
            || !ResourceIdRules.TryValidateLocationId(ids[1], out error)
            || !ResourceIdRules.TryValidateOperationId(ids[2], out error))
        {
            return false;
        }

        result = new OperationName(ids[0], ids[1], ids[2]);
        return true;
    }

    public override string ToString() => $"projects/{ProjectId}/locations/{LocationId}/operations/{OperationId}";
}
