using Bridge.CloudTasks.Iam.V1;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// A test store that passes every call to an inner store (in memory unless given): a subclass overrides only the calls
/// it changes. The calls the interface derives from others by default (DeleteStoredTasks, PurgeTasks,
/// SaveTaskSupersedable, WhenDurableLater) go through this store's own DeleteTasks, SaveTask and WhenDurable, as the interface's defaults do, so
/// overriding those catches every path. A member added to <see cref="IEmulatorStore"/> is one more line here.
/// </summary>
internal abstract class DelegatingEmulatorStore(IEmulatorStore? inner = null) : IEmulatorStore
{
    protected IEmulatorStore Inner { get; } = inner ?? new InMemoryStore();

    public virtual StoredState Load() => Inner.Load();

    public virtual System.Threading.Tasks.Task WhenDurable() => Inner.WhenDurable();

    public virtual System.Threading.Tasks.Task WhenDurableLater() => WhenDurable();

    public virtual long FailedCommits => Inner.FailedCommits;

    public virtual void ResumeAfterFailure(long failedCommitsSeen) => Inner.ResumeAfterFailure(failedCommitsSeen);

    public virtual void OnCommitFailed(Action handler) => Inner.OnCommitFailed(handler);

    public virtual void SaveQueue(Queue queue) => Inner.SaveQueue(queue);

    public virtual void DeleteQueue(string name, DateTimeOffset reservedUntil) => Inner.DeleteQueue(name, reservedUntil);

    public virtual void SaveTask(StoredTask task) => Inner.SaveTask(task);

    public virtual bool Persists => Inner.Persists;

    public virtual SupersedableWrite? SaveTaskSupersedable(StoredTask task)
    {
        SaveTask(task);
        return null;
    }

    public virtual void SaveTasks(IReadOnlyCollection<StoredTask> tasks) => Inner.SaveTasks(tasks);

    public virtual void DeleteTasks(IReadOnlyCollection<string> names, DateTimeOffset reservedUntil) => Inner.DeleteTasks(names, reservedUntil);

    public virtual void DeleteStoredTasks(IReadOnlyCollection<StoredTask> tasks, DateTimeOffset reservedUntil) => DeleteTasks(tasks.Select(t => t.Name).ToList(), reservedUntil);

    public virtual void PurgeTasks(string queueName, IReadOnlyCollection<string> names, DateTimeOffset reservedUntil) => DeleteTasks(names, reservedUntil);

    public virtual void SavePolicy(string resource, Policy policy) => Inner.SavePolicy(resource, policy);

    public virtual void SaveCmekConfig(CmekConfig config) => Inner.SaveCmekConfig(config);

    public virtual void DeleteExpiredTombstones(DateTimeOffset now) => Inner.DeleteExpiredTombstones(now);

    public virtual void Clear() => Inner.Clear();

    public virtual string GetOrCreateSigningKey(Func<string> create) => Inner.GetOrCreateSigningKey(create);

    public virtual void Dispose() => Inner.Dispose();
}
