using System.Collections.Concurrent;
using System.Text.Json;
using Bridge.Core.Callback;
using CloudNative.CloudEvents.SystemTextJson;

namespace Bridge.Server;

/// <summary>
/// Outcomes a developer can read: the latest 200 in memory (<c>GET /api/outcomes</c>) and, if configured, every one
/// appended to a JSON-lines file.
/// </summary>
public sealed class LocalOutcomeSink(string? file) : IOutcomeSink
{
    public const string Name = "Local";
    private const int Capacity = 200;
    private static readonly JsonEventFormatter Formatter = new();
    private readonly ConcurrentQueue<JsonElement> _recent = new();
    private readonly SemaphoreSlim _fileGate = new(1, 1);

    public IReadOnlyList<JsonElement> Recent => _recent.ToArray();

    public async Task PublishAsync(TaskOutcome outcome, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        var bytes = Formatter.EncodeStructuredModeMessage(outcome.ToCloudEvent(), out _);
        using var document = JsonDocument.Parse(bytes);
        if (file is not null)
        {
            await _fileGate.WaitAsync(cancellationToken);
            try
            {
                await File.AppendAllTextAsync(file, System.Text.Encoding.UTF8.GetString(bytes.Span) + "\n", cancellationToken);
            }
            finally
            {
                _fileGate.Release();
            }
        }

        _recent.Enqueue(document.RootElement.Clone());
        while (_recent.Count > Capacity && _recent.TryDequeue(out _))
        {
        }
    }
}
