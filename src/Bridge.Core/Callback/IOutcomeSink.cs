
namespace Bridge.Core.Callback;

/// <summary>
/// Where outcomes go. Returns only once the outcome is durably handed over; throws otherwise. Each sink renders the
/// outcome as it needs (<see cref="TaskOutcome.ToCloudEvent"/> for the CloudEvent sinks).
/// </summary>
public interface IOutcomeSink
{
    Task PublishAsync(TaskOutcome outcome, CancellationToken cancellationToken);
}
