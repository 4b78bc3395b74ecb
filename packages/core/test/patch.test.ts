import { describe, expect, it } from "vitest";
import { isWrapped, unwrapped, wrapMethod } from "../src/patch.js";

class Service {
  greet(name: string, punctuation = "!") {
    return `hello ${name}${punctuation}`;
  }
}

describe("wrapMethod", () => {
  it("wraps, keeps name and length, and restores the exact original", () => {
    const original = Service.prototype.greet;
    const calls: string[] = [];
    const handle = wrapMethod(
      Service.prototype,
      "greet",
      "test",
      (orig) =>
        function (this: Service, name: string, punctuation?: string) {
          calls.push(name);
          return orig.call(this, name.toUpperCase(), punctuation);
        },
    );
    expect(new Service().greet("ada")).toBe("hello ADA!");
    expect(calls).toEqual(["ada"]);
    expect(Service.prototype.greet.name).toBe("greet");
    expect(Service.prototype.greet.length).toBe(original.length);
    expect(isWrapped(Service.prototype.greet, "test")).toBe(true);
    expect(unwrapped(Service.prototype.greet)).toBe(original);
    expect(handle.unwrap()).toBe(true);
    expect(Service.prototype.greet).toBe(original);
    expect(Object.hasOwn(Service.prototype, "greet")).toBe(true);
  });

  it("never double-wraps for the same owner", () => {
    const original = Service.prototype.greet;
    let wrapped = 0;
    const make = (orig: typeof original) => {
      wrapped++;
      return function (this: Service, name: string) {
        return `[${orig.call(this, name)}]`;
      };
    };
    const first = wrapMethod(Service.prototype, "greet", "test", make);
    const second = wrapMethod(Service.prototype, "greet", "test", make);
    expect(second).toBe(first);
    expect(wrapped).toBe(1);
    expect(new Service().greet("x")).toBe("[hello x!]");
    first.unwrap();
    expect(Service.prototype.greet).toBe(original);
  });

  it("leaves a pass-through when another library wrapped on top, and does not stack on re-install", () => {
    const original = Service.prototype.greet;
    const ours = wrapMethod(
      Service.prototype,
      "greet",
      "test",
      (orig) =>
        function (this: Service, name: string) {
          return `ours(${orig.call(this, name)})`;
        },
    );
    const oursWrapper = Service.prototype.greet;
    // Another library wraps after us, keeping a reference to our wrapper.
    Service.prototype.greet = function (this: Service, name: string) {
      return `theirs(${oursWrapper.call(this, name)})`;
    };
    const theirs = Service.prototype.greet;
    expect(new Service().greet("x")).toBe("theirs(ours(hello x!))");
    expect(ours.unwrap()).toBe(false);
    expect(Service.prototype.greet).toBe(theirs);
    expect(new Service().greet("x")).toBe("theirs(hello x!)");
    expect(ours.active).toBe(false);
    Service.prototype.greet = original;
  });

  it("restores an inherited method by removing the own property it added", () => {
    class Child extends Service {}
    const handle = wrapMethod(
      Child.prototype,
      "greet",
      "test",
      (orig) =>
        function (this: Service, name: string) {
          return orig.call(this, name).toUpperCase();
        },
    );
    expect(new Child().greet("x")).toBe("HELLO X!");
    handle.unwrap();
    expect(Object.hasOwn(Child.prototype, "greet")).toBe(false);
    expect(Child.prototype.greet).toBe(Service.prototype.greet);
  });

  it("install/uninstall 1000 times leaves the original and stacks nothing", () => {
    const original = Service.prototype.greet;
    for (let i = 0; i < 1000; i++) {
      const h = wrapMethod(
        Service.prototype,
        "greet",
        "test",
        (orig) =>
          function (this: Service, name: string) {
            return orig.call(this, name);
          },
      );
      h.unwrap();
    }
    expect(Service.prototype.greet).toBe(original);
    expect(isWrapped(Service.prototype.greet)).toBe(false);
  });

  it("rejects a slot that is not a function with a TypeError naming it", () => {
    const target = { value: 1 } as unknown as { value: () => void };
    expect(() => wrapMethod(target, "value", "test", (o) => o)).toThrow(/cannot wrap value/);
  });

  it("keeps two owners independent", () => {
    const original = Service.prototype.greet;
    const a = wrapMethod(
      Service.prototype,
      "greet",
      "a",
      (orig) =>
        function (this: Service, name: string) {
          return `a(${orig.call(this, name)})`;
        },
    );
    const b = wrapMethod(
      Service.prototype,
      "greet",
      "b",
      (orig) =>
        function (this: Service, name: string) {
          return `b(${orig.call(this, name)})`;
        },
    );
    expect(new Service().greet("x")).toBe("b(a(hello x!))");
    expect(b.unwrap()).toBe(true);
    expect(a.unwrap()).toBe(true);
    expect(Service.prototype.greet).toBe(original);
  });
});
