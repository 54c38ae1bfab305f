
namespace Bridge.Core.Forwarding;

/// <summary>Turns one inbound event into one CreateTask call.</summary>
public interface IEventForwarder
{
    /// <exception cref="ForwardingException">The event was not forwarded; <see cref="ForwardingException.IsTransient"/> says whether to retry.</exception>
    Task<ForwardResult> ForwardAsync(InboundEvent inbound, CancellationToken cancellationToken = default);
}
