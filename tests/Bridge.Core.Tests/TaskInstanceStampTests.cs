using System.Collections.Concurrent;
using Bridge.Core.Internal;

namespace Bridge.Core.Tests;

public sealed class TaskInstanceStampTests
{
    [Fact]
    public void Stamps_are_96_bit_hex_and_never_repeat_across_refills_and_threads()
    {
        var stamps = new ConcurrentBag<string>();
        // Several threads, each past more than one refill of its buffer (128 stamps each).
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 4 }, _ =>
        {
            for (var i = 0; i < 300; i++)
            {
                stamps.Add(TaskInstanceStamp.Next());
            }
        });

        Assert.Equal(8 * 300, stamps.Count);
        Assert.All(stamps, s => Assert.Matches("^[0-9a-f]{24}$", s));
        Assert.Equal(stamps.Count, stamps.Distinct(StringComparer.Ordinal).Count());
    }
}
